"""The governance store: SQLAlchemy models, Alembic migrations and the encrypted blob stores
(files, or rows of the database: :mod:`openlfr.store.db_blobs`)."""

from openlfr.store.blobs import BlobBackend, BlobStore, BlobTransaction, load_or_create_key
from openlfr.store.db_blobs import DatabaseBlobStore, blob_backend, open_blob_store
from openlfr.store.engine import make_engine, session_factory, upgrade
from openlfr.store.settings import blob_dir, data_dir, database_url

__all__ = [
    "BlobBackend", "BlobStore", "BlobTransaction", "DatabaseBlobStore", "blob_backend", "blob_dir", "data_dir",
    "database_url", "load_or_create_key", "make_engine", "open_blob_store", "session_factory", "upgrade",
]
