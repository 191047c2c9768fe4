"""openlfr: open, accountable live facial recognition.

The small public API (in the spirit of face_recognition's ``api.py``)::

    import openlfr
    image = openlfr.load_image("photo.jpg")
    faces = openlfr.analyze(image)          # detect, align, embed, score quality
    hits = index.search(faces[0].template)  # see openlfr.matching
"""

from openlfr.errors import OpenLFRError

__version__ = "0.1.0"

__all__ = ["OpenLFRError", "__version__", "analyze", "load_image"]


def load_image(path):  # noqa: ANN001, ANN201 - thin re-export, typed at the source
    """Load an image file as an RGB ``uint8`` array (see :func:`openlfr.face.image.load_image`)."""
    from openlfr.face.image import load_image as _load

    return _load(path)


def analyze(image, **kwargs):  # noqa: ANN001, ANN003, ANN201
    """Find, align, embed and quality-score every face (see :class:`openlfr.face.analyzer.FaceAnalyzer`)."""
    from openlfr.face.analyzer import default_analyzer

    return default_analyzer().analyze(image, **kwargs)
