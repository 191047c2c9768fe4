"""The one settings tree (openlfr.config): today's environment names read into their sections,
the command line's options laid over the environment without writing it, detector and face
model names checked against the model registry (the operator's own models file included), and
docs/settings.md listing every setting."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openlfr.cli import app
from openlfr.config import SECTIONS, Settings, configure, env_name, get_settings, overrides

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def one_error(result, fragment: str) -> str:  # noqa: ANN001
    """The result is exit 2 with one ``error:`` line holding ``fragment``, and no traceback."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert "Traceback" not in result.output
    return errors[0]


def _openlfr_environment() -> dict[str, str]:
    """openlfr's variables (importing OpenCV may add LD_LIBRARY_PATH: not ours to watch)."""
    return {k: v for k, v in os.environ.items() if k.startswith("OPENLFR_")}


def test_todays_environment_names_reach_their_sections(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    names = {
        "OPENLFR_DATABASE_URL": "sqlite:///elsewhere.db", "OPENLFR_KEY_FILE": str(tmp_path / "k"),
        "OPENLFR_KEY": "c2VjcmV0", "OPENLFR_ALERT_RETENTION_DAYS": "7", "OPENLFR_LOGIN_ATTEMPTS": "9",
        "OPENLFR_API_TOKEN_DAYS": "2", "OPENLFR_API_LOGIN_ATTEMPTS": "3", "OPENLFR_DETECTOR": "mmod",
        "OPENLFR_MODEL_DIR": str(tmp_path / "dat"), "OPENLFR_CAMERA_FILE_ROOTS": os.pathsep.join(["/r1", "/r2"]),
        "OPENLFR_PROGRESS_SECONDS": "0", "OPENLFR_MAX_IMAGE_PIXELS": "1000", "OPENLFR_LOG_FORMAT": "json",
        "OPENLFR_MODELS_FILE": "",  # empty: unset, as before (not the current folder)
    }
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    s = get_settings()  # no cache_clear: the settings follow the environment
    assert (s.store.database_url, s.store.key_file) == ("sqlite:///elsewhere.db", tmp_path / "k")
    assert s.store.key is not None and s.store.key.get_secret_value() == "c2VjcmV0" and "c2VjcmV0" not in repr(s)
    assert (s.policy.alert_retention_days, s.policy.login_attempts) == (7, 9)
    assert (s.api.token_days, s.api.login_attempts) == (2, 3)  # the API's own login_attempts, apart from policy's
    assert (s.models.detector, s.models.model_dir, s.models.backend) == ("mmod", tmp_path / "dat", "auto")
    assert s.models.models_file is None
    assert s.pipeline.camera_file_roots == [Path("/r1"), Path("/r2")]
    assert (s.pipeline.progress_seconds, s.pipeline.max_image_pixels, s.log_format) == (0, 1000, "json")
    from openlfr.governance.camera_sources import file_roots
    from openlfr.store.settings import database_url

    assert database_url() == "sqlite:///elsewhere.db" and file_roots() == [Path("/r1"), Path("/r2")]
    monkeypatch.setenv("OPENLFR_API_TOKEN_DAYS", "5")
    assert get_settings().api.token_days == 5


def test_the_command_line_lies_over_the_environment_without_writing_it(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    monkeypatch.setenv("OPENLFR_DETECTOR", "mmod")
    monkeypatch.setenv("OPENLFR_BACKEND", "cpu")
    monkeypatch.delenv("OPENLFR_DATABASE_URL", raising=False)
    before = _openlfr_environment()
    s = configure(data_dir=tmp_path / "cli", detector="hog", backend=None)
    assert _openlfr_environment() == before
    assert get_settings() is s and s.data_dir == tmp_path / "cli"
    assert (s.models.detector, s.models.backend) == ("hog", "cpu")  # None leaves the environment's value
    assert overrides() == {"data_dir": tmp_path / "cli", "detector": "hog"}
    from openlfr.store.settings import database_url

    assert database_url() == f"sqlite:///{tmp_path / 'cli' / 'openlfr.db'}"
    monkeypatch.setenv("OPENLFR_POLICY_UNRELATED", "1")  # the environment changes: the overrides stay on top
    assert get_settings().models.detector == "hog"
    # through the command line: the root callback configures, nothing is written to os.environ
    result = runner.invoke(app, ["--detector", "yunet", "--data-dir", str(tmp_path / "other"), "calibrate",
                                 "--watchlist-size", "5"])
    one_error(result, "--cohort")
    assert _openlfr_environment() == before | {"OPENLFR_POLICY_UNRELATED": "1"}
    assert (get_settings().models.detector, get_settings().data_dir) == ("yunet", tmp_path / "other")
    get_settings.cache_clear()  # forgets the overrides: the environment alone again
    assert get_settings().models.detector == "mmod" and overrides() == {}


def test_unknown_detector_or_model_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["calibrate", "--watchlist-size", "5"]
    line = one_error(runner.invoke(app, ["--detector", "retinaface", *args]), "--detector (OPENLFR_DETECTOR): ")
    assert line.endswith("unknown detector 'retinaface'; known: mmod, hog, yunet")
    one_error(runner.invoke(app, [*args, "--face-model", "arcface"]),
              "--face-model (OPENLFR_FACE_MODEL): unknown face model 'arcface'; known: dlib-resnet, sface")
    one_error(runner.invoke(app, args, env={"OPENLFR_FACE_MODEL": "arcface"}), "--face-model (OPENLFR_FACE_MODEL)")
    # a bad setting that is no command-line option is named by its environment variable alone
    one_error(runner.invoke(app, args, env={"OPENLFR_API_TOKEN_DAYS": "-1"}),
              "error: OPENLFR_API_TOKEN_DAYS: Input should be greater than 0, not '-1'")
    one_error(runner.invoke(app, args, env={"OPENLFR_URGENT_MIN_RANK": "general"}),
              "error: OPENLFR_URGENT_MIN_RANK: unknown police rank 'general'")


def test_a_model_in_the_operators_models_file_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc = tmp_path / "models.json"
    doc.write_text(json.dumps({"embedders": [{"name": "my-arcface", "path": "r50.onnx"}],
                               "detectors": [{"name": "my-yunet", "path": "y.onnx"}]}))
    monkeypatch.setenv("OPENLFR_MODELS_FILE", str(doc))
    s = configure(face_model="my-arcface", detector="my-yunet")
    assert (s.models.face_model, s.models.detector) == ("my-arcface", "my-yunet")
    with pytest.raises(ValueError, match="known: dlib-resnet, sface, my-arcface"):
        configure(face_model="my-r100")
    # through the command line too (the registry checks the model's file when it loads it)
    one_error(runner.invoke(app, ["--face-model", "my-arcface", "--detector", "my-yunet", "calibrate",
                                  "--watchlist-size", "5"]), "--cohort")
    doc.write_text("not json")
    one_error(runner.invoke(app, ["--face-model", "my-arcface", "calibrate", "--watchlist-size", "5"]),
              f"--face-model (OPENLFR_FACE_MODEL): OPENLFR_MODELS_FILE: cannot read {doc}")


def test_the_settings_page_lists_every_setting() -> None:
    page = (REPO / "docs" / "settings.md").read_text()
    rows = [(None, name) for name in Settings.model_fields if name not in SECTIONS]
    rows += [(section, name) for section, cls in SECTIONS.items() for name in cls.model_fields]
    missing = [env_name(s, n) for s, n in rows
               if f"| `{f'{s}.{n}' if s else n}` | `{env_name(s, n)}` |" not in page]
    assert not missing, f"docs/settings.md lacks {missing}"
    assert env_name("api", "token_days") == "OPENLFR_API_TOKEN_DAYS" and len(rows) > 40
