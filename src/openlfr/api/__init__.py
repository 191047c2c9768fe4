"""HTTP API and web console: :func:`create_app` (FastAPI), served by ``openlfr serve``."""

from openlfr.api.app import create_app
from openlfr.config import ApiSettings

__all__ = ["ApiSettings", "create_app"]
