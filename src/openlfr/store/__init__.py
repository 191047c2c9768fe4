"""The governance store: SQLAlchemy models, Alembic migrations and the encrypted blob store."""

from openlfr.store.blobs import BlobStore, BlobTransaction, load_or_create_key
from openlfr.store.engine import make_engine, session_factory, upgrade
from openlfr.store.settings import blob_dir, data_dir, database_url

__all__ = [
    "BlobStore", "BlobTransaction", "blob_dir", "data_dir", "database_url",
    "load_or_create_key", "make_engine", "session_factory", "upgrade",
]
