"""Errors that openlfr raises on purpose.

Every error a user can cause (bad input, a refused action) is an :class:`OpenLFRError`, so
the command line and the API can turn it into a clear one-line message instead of a traceback.
"""


class OpenLFRError(Exception):
    """Base class of every deliberate openlfr error; ``str(err)`` is a user-facing sentence."""


class InputError(OpenLFRError):
    """The input (file, image, video, argument) cannot be used."""


class ImageError(InputError):
    """A file is missing, not an image, truncated or too large."""


class ImageTooLarge(ImageError):
    """The image is over a size limit (bytes, pixels or the decoding budget)."""


class UnsupportedImage(ImageError):
    """The bytes are not one of the accepted image formats."""


class NoFaceError(InputError):
    """No face was found where one was required."""


class MultipleFacesError(InputError):
    """Several faces were found where exactly one was required (enrolment)."""


class QualityError(InputError):
    """A face was found but is too poor to use; the message says why."""


class ModelError(OpenLFRError):
    """A model file is missing, unreadable or of an unexpected shape."""


class NotFoundError(OpenLFRError):
    """A named object (watchlist entry, agreement, deployment...) does not exist."""
