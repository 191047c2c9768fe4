"""A retrospective search job on a real clip from OPENLFR_DATA (the real face model on every
analysed frame; a few seconds): run inline on SQLite, it stores the one alert the synchronous
search stores. Without the data it is skipped; test_jobs_doors.py::
test_a_search_job_runs_inline_and_finds_what_the_search_finds checks the same on a clip with no face."""

from __future__ import annotations

from pathlib import Path

import pytest
from govkit import Estate
from jobkit import retrospective, watchlists

from openlfr.governance import Governance
from openlfr.jobs import SEARCH, submit
from openlfr.scan import search_recording

CLIP = "short_hamilton_clip.mp4"
REFERENCES = ("lin-manuel-miranda.png", "alex-lacamoire.png")


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def video(data_dir: Path) -> Path:
    folder = data_dir / "video"
    if not (folder / CLIP).is_file() or not all((folder / "references" / r).is_file() for r in REFERENCES):
        pytest.skip(f"the test clip {CLIP} and its reference photos are not in {folder}")
    return folder


def test_a_search_job_on_a_real_clip_alerts_as_the_search_does(store: Governance, estate: Estate,
                                                              video: Path) -> None:
    from openlfr.face.analyzer import enrolment_template

    store.template_fn = enrolment_template
    (wl,) = watchlists(estate, [2], [(video / "references" / r).read_bytes() for r in REFERENCES])
    dep_door, _ = retrospective(estate, wl)  # one deployment each: a pass is one alert per deployment
    dep_job, cam_job = retrospective(estate, wl, camera="second-door")

    door = search_recording(store, estate.reviewer, dep_door, video / CLIP)
    job = submit(store, estate.reviewer, SEARCH, {"deployment": dep_job, "path": str(video / CLIP)})

    assert len(door.alerts) == 1 and job.status == "succeeded" and job.outcome is not None
    assert len(job.outcome["alerts"]) == 1 and job.outcome["camera"] == cam_job
    for key, value in (("frames_analysed", door.analysed), ("tracks", door.tracks), ("people_passes", door.passes)):
        assert job.outcome[key] == value, key
    # what a re-delivered search looks for to know what an interrupted attempt stored (kinds.Search)
    from openlfr.store.models import AlertDetail

    with store.reading() as ctx:
        assert ctx.session.get(AlertDetail, job.outcome["alerts"][0]).worker == "search:reviewer"
