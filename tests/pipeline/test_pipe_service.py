"""``CameraService`` (the cameras under ``openlfr serve``): a worker per camera of each live
deployment; a camera whose address or settings changed gets a new worker; one that ended is
not restarted for the same job. Supervisors are stood in for (the real ones are exercised by
test_pipe_workers.py and the serve test)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from openlfr.pipeline import service as service_mod
from openlfr.pipeline.events import EventBus
from openlfr.pipeline.worker import CameraJob, StoreConfig


class FakeSupervisor:
    started: ClassVar[list[CameraJob]] = []  # what every instance started or stopped, for the test to read
    stopped: ClassVar[list[CameraJob]] = []

    def __init__(self, jobs: list[CameraJob], store: Any, bus: Any) -> None:
        (self.job,) = jobs

    def start(self) -> None:
        FakeSupervisor.started.append(self.job)

    def poll(self) -> bool:
        return False

    def shutdown(self) -> None:
        FakeSupervisor.stopped.append(self.job)

    def outcomes(self) -> list[tuple[CameraJob, str, list[int]]]:
        return [(self.job, "stopped", [0])]


def test_camera_service_follows_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_mod, "Supervisor", FakeSupervisor)
    FakeSupervisor.started, FakeSupervisor.stopped = [], []
    a = CameraJob(1, 10, "gate", "/rec/a.mp4", {"loop": True})
    b = CameraJob(1, 11, "door", "/rec/b.mp4")
    svc = service_mod.CameraService(None, StoreConfig("sqlite://", "/tmp", ""), EventBus(),  # type: ignore[arg-type]
                                    rescan_s=1e9)
    svc._sync([a, b])
    assert FakeSupervisor.started == [a, b]
    svc._sync([a, b])  # the same jobs: nothing new
    assert FakeSupervisor.started == [a, b] and not FakeSupervisor.stopped
    edited = CameraJob(1, 10, "gate", "/rec/a.mp4", {"loop": True, "analyse_fps": 3.0})  # changed in the console
    later = CameraJob(2, 12, "exit", "/rec/c.mp4")  # a deployment started since
    svc._sync([edited, b, later])
    assert FakeSupervisor.stopped == [a] and FakeSupervisor.started == [a, b, edited, later]
    assert [d["camera"] for d in svc.describe()] == ["gate", "door", "exit"]
    svc.stop()
    assert FakeSupervisor.stopped == [a, edited, b, later]
