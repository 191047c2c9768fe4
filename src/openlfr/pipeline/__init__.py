"""openlfr.pipeline: the live loop that wires video -> face -> matching -> alerts, per camera.

* :mod:`~openlfr.pipeline.camera` — :class:`CameraPipeline`, one camera in one live deployment;
* :mod:`~openlfr.pipeline.worker` — :func:`run_camera`, :class:`Supervisor` (a process per camera);
* :mod:`~openlfr.pipeline.host` — :class:`HostAgent`: claims camera leases and runs their workers;
* :mod:`~openlfr.pipeline.leases` — camera leases, their epochs and the fence on every write;
* :mod:`~openlfr.pipeline.events` — the in-process :class:`EventBus` alerts are published on;
* :mod:`~openlfr.pipeline.records` — what is stored: alerts, counters, gaps, checkpoints;
* :mod:`~openlfr.pipeline.settings` — :class:`CameraSettings`.

See ``docs/pipeline.md``. (Nothing is imported here, so ``import openlfr.pipeline`` stays cheap.)
"""
