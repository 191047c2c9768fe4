"""The cameras of every live deployment, run beside another service (``openlfr serve``).

:class:`CameraService` runs on a background thread: it starts a supervised worker process
(:class:`~openlfr.pipeline.worker.Supervisor`) for each camera of each deployment live now,
checks the store again every ``rescan_s`` seconds (a deployment started later, a camera whose
address or settings were changed in the console: its worker is restarted with the new ones),
and stops every worker cleanly when asked. Alerts go to the ``bus`` the API streams to
reviewers.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from openlfr.governance import Governance
from openlfr.pipeline.events import EventBus
from openlfr.pipeline.worker import CameraJob, StoreConfig, Supervisor, jobs_for_live_deployments

log = logging.getLogger(__name__)


class CameraService:
    """Keeps a worker running for each camera of each live deployment until :meth:`stop`."""

    def __init__(self, gov: Governance, store: StoreConfig, bus: EventBus, rescan_s: float = 30.0,
                 poll_s: float = 0.25) -> None:
        self.gov, self.store, self.bus = gov, store, bus
        self.rescan_s, self.poll_s = rescan_s, poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # (deployment, camera) -> (the job it runs, its supervisor); finished ones stay, so a
        # recording that ended or a camera that failed is not restarted until its job changes
        self.running: dict[tuple[int, int], tuple[CameraJob, Supervisor]] = {}

    def jobs(self) -> list[CameraJob]:
        """The jobs of the deployments live now (each camera's settings from the store)."""
        return jobs_for_live_deployments(self.gov)

    def start(self, jobs: list[CameraJob] | None = None) -> CameraService:
        """Start the workers of ``jobs`` (default: :meth:`jobs`) and the background thread."""
        self._sync(self.jobs() if jobs is None else jobs)
        self._thread = threading.Thread(target=self._loop, name="camera-service", daemon=True)
        self._thread.start()
        return self

    def _sync(self, jobs: list[CameraJob]) -> None:
        for job in jobs:
            key = (job.deployment_id, job.camera_id)
            old = self.running.get(key)
            if old is not None and old[0] == job:
                continue  # running, or ended with this very job: nothing new to do
            if old is not None:
                log.info("camera %s changed: restarting its worker", job.camera_name)
                old[1].shutdown()
            supervisor = Supervisor([job], self.store, self.bus)
            supervisor.start()
            self.running[key] = (job, supervisor)

    def _loop(self) -> None:
        waited = 0.0
        while not self._stop.wait(self.poll_s):
            for _, supervisor in list(self.running.values()):
                supervisor.poll()  # restarts crashed workers; marks ended ones done
            waited += self.poll_s
            if waited >= self.rescan_s:
                waited = 0.0
                try:
                    self._sync(self.jobs())
                except Exception:  # the store busy or away: keep the running cameras, try again later
                    log.exception("camera service: could not read the live deployments")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every worker (they flush their counters and status) and the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for _, supervisor in self.running.values():
            supervisor.shutdown()

    def outcomes(self) -> list[tuple[CameraJob, str, list[int]]]:
        """(job, how it ended, exit codes) of every worker started."""
        return [o for _, sup in self.running.values() for o in sup.outcomes()]

    def describe(self) -> list[dict[str, Any]]:
        """The cameras started: name, deployment, source."""
        return [{"camera": j.camera_name, "deployment": j.deployment_id, "source": j.source}
                for j, _ in self.running.values()]
