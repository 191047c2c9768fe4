"""Hostile images against a running server (real HTTP, real face model, SQLite and PostgreSQL):
decompression bombs and oversized photos are refused from their header, fast, without memory
growth, while ``/health`` keeps answering; a large upload being analysed holds no database
lock, so a review and the camera worker's writes go through meanwhile."""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import pytest

from apikit import KEY, Site, bearer_tokens, build_store, serve
from openlfr.api import ApiSettings, create_app
from openlfr.governance import Governance


def _png_bomb(width: int, height: int) -> bytes:
    """A ~100 KB PNG whose header claims ``width`` x ``height`` (its data is a few zero rows)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    rows = zlib.compress(b"\0" * (width * 3 + 1) * 40, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def _jpeg_claiming(width: int, height: int, data_dir: Path) -> bytes:
    """A real JPEG whose frame header (SOF) is rewritten to claim ``width`` x ``height``."""
    jpeg = bytearray((data_dir / "misc" / "obama-240p.jpg").read_bytes())
    i = 2
    while i < len(jpeg):
        marker = jpeg[i + 1]
        if marker in (0xC0, 0xC1, 0xC2):
            jpeg[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(jpeg)
        i += 2 + struct.unpack(">H", jpeg[i + 2 : i + 4])[0]
    raise AssertionError("no frame header found")


def _photo(side: int, data_dir: Path) -> bytes:
    """A real photograph (a face in ``misc/obama.jpg``) enlarged to ``side`` x ``side``."""
    img = cv2.resize(cv2.imread(str(data_dir / "misc" / "obama.jpg")), (side, side), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def _watch(url: str) -> Iterator[dict[str, float]]:
    """While the block runs: the largest resident-memory growth of this process (the server runs
    in it) and the slowest ``/health`` answer, polled every 20 ms."""
    seen = {"rss_growth": 0.0, "health_max_s": 0.0, "health_calls": 0}
    httpx.get(f"{url}/health", timeout=5)  # warm: the first call opens connections
    base = _rss()
    stop = threading.Event()

    def memory() -> None:
        while not stop.is_set():
            seen["rss_growth"] = max(seen["rss_growth"], _rss() - base)
            time.sleep(0.005)

    def health() -> None:
        with httpx.Client(base_url=url, timeout=5) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                assert c.get("/health").status_code == 200
                seen["health_max_s"] = max(seen["health_max_s"], time.perf_counter() - t0)
                seen["health_calls"] += 1
                time.sleep(0.02)

    threads = [threading.Thread(target=memory, daemon=True), threading.Thread(target=health, daemon=True)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    try:
        yield seen
    finally:
        time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(5)


class SlowTemplates:
    """The real enrolment template function, plus a pause: stands for a slow model or a busy
    machine, and widens the window in which a lock held during analysis would show."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.running = threading.Event()

    def __call__(self, image: bytes):  # type: ignore[no-untyped-def]
        from openlfr.face.analyzer import enrolment_template

        self.running.set()
        try:
            time.sleep(self.pause)
            return enrolment_template(image)
        finally:
            self.running.clear()


@pytest.fixture
def hostile(db_url: str, tmp_path: Path, data_dir: Path) -> Iterator[tuple[Site, SlowTemplates]]:
    templates = SlowTemplates(0.0)
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, template_fn=templates, migrate=False)
    dep, cam, entries, ag, snap = build_store(gov)
    app = create_app(gov, settings=ApiSettings(max_upload_bytes=30_000_000, login_attempts=1000))
    with serve(app) as url:
        yield Site(url, gov, app, dep, cam, entries, ag, snap, bearer_tokens(url)), templates
    gov.close()


def _share(site: Site, image: bytes, subject: str, timeout: float = 60) -> httpx.Response:
    meta = {"agreement_id": str(site.agreement_id), "category": "wanted_by_court", "warrant_ref": "WA-2029-00123",
            "reason": "warrant 7", "subject_ref": subject, "image_date": "2026-01-01"}
    with httpx.Client(base_url=site.url, timeout=timeout,
                      headers={"Authorization": f"Bearer {site.tokens['met']}"}) as c:
        return c.post("/api/images", data=meta, files={"file": ("photo.jpg", image, "image/jpeg")})


def test_bombs_and_oversized_photos_are_refused_fast_and_cheaply(hostile, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    site, _ = hostile
    cases = {
        "PNG claiming 30000x30000": _png_bomb(30000, 30000),
        "JPEG claiming 65000x65000": _jpeg_claiming(65000, 65000, data_dir),
        "real 5200x5200 photo": _photo(5200, data_dir),
    }
    assert len(cases["PNG claiming 30000x30000"]) < 200_000
    for name, body in cases.items():
        with _watch(site.url) as seen:
            t0 = time.perf_counter()
            r = _share(site, body, f"S-{name[:4]}")
            took = time.perf_counter() - t0
        print(f"{name}: {r.status_code} in {took * 1000:.0f} ms, memory +{seen['rss_growth'] / 2**20:.0f} MiB, "
              f"/health max {seen['health_max_s'] * 1000:.0f} ms over {seen['health_calls']} calls")
        assert r.status_code in (413, 422), (name, r.text)
        assert "megapixel" in r.json()["detail"], r.text
        assert took < 1.0, name
        assert seen["rss_growth"] < 200 * 2**20, name
        assert seen["health_calls"] >= 3 and seen["health_max_s"] < 0.2, (name, seen)
    with site.client("met") as c:
        assert not any(row["subject_ref"].startswith("S-") for row in c.get("/api/ledger").json()
                       if row["subject_ref"][2:] in {n[:4] for n in cases})


@pytest.mark.slow_on_postgres
def test_review_and_camera_writes_go_through_during_a_large_upload(hostile, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    site, templates = hostile
    templates.pause = 3.0  # analysis of the upload takes at least 3 s
    alert_id = site.raise_alert(entry=0, score=0.8)
    result: dict[str, httpx.Response] = {}
    upload = threading.Thread(target=lambda: result.setdefault("r", _share(site, _photo(4000, data_dir), "S-BIG-1")))
    upload.start()
    assert templates.running.wait(30), "the upload never reached the face analysis"
    # while the 16-megapixel photo is being analysed: a reviewer decides, the camera worker
    # stores an alert (as `openlfr run` does), each in well under the analysis time
    t0 = time.perf_counter()
    with site.client("reviewer") as c:
        r = c.post(f"/api/alerts/{alert_id}/review", json={"decision": "confirm", "note": "same face"})
    review_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = site.raise_alert(entry=1, score=0.7, announce=False)
    worker_s = time.perf_counter() - t0
    assert templates.running.is_set(), "the analysis finished before the checks: the test proves nothing"
    assert r.status_code == 200 and r.json()["confirmations"] == 1, r.text
    assert review_s < 1.0 and worker_s < 1.0, (review_s, worker_s)
    upload.join(60)
    assert result["r"].status_code == 201, result["r"].text
    assert result["r"].json()["id"] > 0 and second > alert_id
