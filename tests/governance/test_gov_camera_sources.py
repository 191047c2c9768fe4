"""Camera addresses: network streams only to the hosts of networks the organisation allows,
only rtsp/rtsps/http/https; recordings only inside the allowed folders. Checked when a camera
is registered (Python, CLI and API doors) and again when a worker opens it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from govkit import Estate
from openlfr.errors import InputError
from openlfr.governance import PermissionDenied, cameras, parse
from openlfr.governance.schemas import CameraCreate


def _add(estate: Estate, name: str, url: str) -> int:
    with estate.gov.transaction() as ctx:
        return cameras.add_camera(ctx, estate.admin, parse(CameraCreate, name=name, location="gate",
                                                           stream_url=url)).id


def test_camera_addresses_are_checked_when_registered(estate: Estate, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="no camera network is allowed"):
        _add(estate, "c0", "rtsp://10.20.0.5/stream1")  # nothing allowed until an admin says where
    with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:
        cameras.set_camera_networks(ctx, estate.supplier, ["0.0.0.0/0"])  # not the force's to decide
    with pytest.raises(InputError, match="not a network"), estate.gov.transaction() as ctx:
        cameras.set_camera_networks(ctx, estate.admin, ["10.20.0.0/16", "everything"])
    with estate.gov.transaction() as ctx:
        assert cameras.set_camera_networks(ctx, estate.admin, ["10.20.0.0/16"]) == ["10.20.0.0/16"]

    assert _add(estate, "ok-rtsp", "rtsp://user:pw@10.20.0.5:554/stream1")
    assert _add(estate, "ok-device", "webcam:0")
    refused = {
        "loopback admin page": ("http://127.0.0.1:8000/internal/admin?token=x", "outside the networks"),
        "another network": ("rtsp://192.168.1.10/stream", "outside the networks"),
        "raw tcp": ("tcp://10.20.0.5:9000", "scheme 'tcp' is not allowed"),
        "udp": ("udp://10.20.0.5:9000", "scheme 'udp' is not allowed"),
        "ffmpeg concat": ("concat:/etc/passwd", "scheme 'concat' is not allowed"),
        "unresolvable": ("rtsp://camera.invalid/stream", "cannot be resolved"),
    }
    for label, (url, why) in refused.items():
        with pytest.raises(InputError, match=why):
            _add(estate, label.replace(" ", "-"), url)

    outside = tmp_path.parent / "elsewhere.mp4"
    outside.write_bytes(b"x")
    monkeypatch.setenv("OPENLFR_CAMERA_FILE_ROOTS", str(tmp_path / "recordings"))
    (tmp_path / "recordings").mkdir()
    inside = tmp_path / "recordings" / "gate.mp4"
    inside.write_bytes(b"x")
    assert _add(estate, "ok-file", str(inside))
    for url in (str(outside), f"file://{outside}", str(tmp_path / "recordings" / ".." / "recordings" / ".." / "x")):
        with pytest.raises(InputError, match="outside the folders|not found"):
            _add(estate, f"file-{abs(hash(url)) % 1000}", url)
    link = tmp_path / "recordings" / "link.mp4"
    link.symlink_to(outside)
    with pytest.raises(InputError, match="outside the folders"):
        _add(estate, "symlinked", str(link))

    from openlfr.audit.chain import load_records

    with estate.gov.transaction() as ctx:
        changes = [r for r in load_records(ctx.session) if r.action == "camera.networks"]
    assert len(changes) == 1 and json.loads(changes[0].details) == {"old": [], "new": ["10.20.0.0/16"]}
