"""Every table of the governance store, in one namespace: ``from openlfr.store.models import X``.

The tables are defined by domain in :mod:`openlfr.store.tables` (parties, sharing, watchlists,
deployments, alerts, pipeline, audit, rights); this module only re-exports them. The schema
is created and upgraded by the Alembic migrations in ``store/migrations``; a test checks that
the migrations and these models agree, constraint names included. Biometric data (images,
templates, snapshots, crops) never sits in the database in the clear: rows hold the id of an
encrypted blob (see :mod:`openlfr.store.blobs`), set to ``None`` once the blob is deleted; on
PostgreSQL the sealed blob itself is a row of ``blobs`` (:mod:`openlfr.store.db_blobs`).
"""

from __future__ import annotations

from openlfr.store.tables.alerts import (
    Alert, AlertDetail, AlertOutcome, AlertPass, AlertReview, Escalation, MediaItem,
)
from openlfr.store.tables.audit import AuditCheckpoint, AuditEvent, AuditHead
from openlfr.store.tables.base import NAMING_CONVENTION, Base
from openlfr.store.tables.deployments import Camera, Deployment, SignageRecord, SnapshotItem, deployment_cameras
from openlfr.store.tables.blobs import StoredBlob
from openlfr.store.tables.parties import (
    ApiToken, Credential, EnrolmentToken, LoginThrottle, Organisation, RateLimit, User,
)
from openlfr.store.tables.pipeline import (
    CameraCheckpoint, CameraGap, CameraLease, CameraStatus, HostAgent, PipelineCounter,
)
from openlfr.store.tables.rights import ErasureKey, LegalHold, RequestFinding, RightsRequest
from openlfr.store.tables.sharing import Agreement, LedgerEntry, SharedImage
from openlfr.store.tables.watchlists import Watchlist, WatchlistEntry

__all__ = [
    "NAMING_CONVENTION", "Agreement", "Alert", "AlertDetail", "AlertOutcome", "AlertPass", "AlertReview",
    "ApiToken", "AuditCheckpoint", "AuditEvent", "AuditHead", "Base", "Camera", "CameraCheckpoint", "CameraGap",
    "CameraLease", "CameraStatus", "Credential", "Deployment", "EnrolmentToken", "ErasureKey", "Escalation",
    "HostAgent", "LedgerEntry", "LegalHold", "LoginThrottle", "MediaItem", "Organisation", "PipelineCounter",
    "RateLimit", "RequestFinding", "RightsRequest", "SharedImage", "SignageRecord", "SnapshotItem", "StoredBlob",
    "User", "Watchlist", "WatchlistEntry", "deployment_cameras",
]
