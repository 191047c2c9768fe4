"""openlfr's settings: one tree, read from the environment, with the command line on top.

:class:`Settings` holds the data directory and the log options at its root, and one section
per part of openlfr, each a pydantic settings model read from its own environment variables:

* ``store`` (:class:`StoreSettings`): the database URL, the keyring's file, a fixed key;
* ``policy`` (:class:`Policy`): the governance rules' retention periods, limits and ranks;
* ``api`` (:class:`ApiSettings`, ``OPENLFR_API_<FIELD>``): sessions, uploads, login throttling;
* ``models`` (:class:`ModelSettings`): backend, detector, face model, model files and caches;
* ``pipeline`` (:class:`PipelineSettings`): the image gate, recording folders, progress lines.

Every field is ``OPENLFR_<FIELD>`` (``OPENLFR_API_<FIELD>`` in ``api``): the names openlfr has
always read; an empty variable counts as unset. docs/settings.md lists them all with their defaults.

:func:`get_settings` is the process's settings. The command line's global options
(``--data-dir``, ``--backend``, ...) are passed to :func:`configure`, which lays them over the
environment without writing it; camera worker processes are handed the same overrides
(:func:`overrides`). The settings are read again whenever an ``OPENLFR_`` variable changes (one
scan of ``os.environ``), as the modules that read the environment themselves used to.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

from platformdirs import user_data_dir
from pydantic import BaseModel, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Backend = Literal["auto", "cpu", "cuda", "dlib"]
PREFIX = "OPENLFR_"


class StoreSettings(BaseSettings):
    """Where the governance store lives. Its encrypted blobs are files under ``<data_dir>/blobs``
    (:func:`openlfr.store.settings.blob_dir`), beside the default database and keyring, or rows of
    the database itself (``cluster.blobs``: the default on PostgreSQL)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    database_url: str | None = Field(
        None, description="any SQLAlchemy URL (`postgresql+psycopg://user@host/db`); default the SQLite file "
                          "`<data_dir>/openlfr.db`")
    key_file: Path | None = Field(
        None, description="the encryption keyring, which may live apart from the data (another disk, a mounted "
                          "secret); default `<data_dir>/key`, created 0600 on first use")
    key: SecretStr | None = Field(
        None, description="one fixed key (base64 of 32 bytes) instead of a keyring file; it cannot be rotated by "
                          "openlfr")


class Policy(BaseSettings):
    """Retention periods, limits and checks the governance services enforce."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    alert_retention_days: float = Field(31, ge=0, description="alerts and their crops/footage are kept this long")
    non_alert_retention_seconds: float = Field(
        0, ge=0, description="crops/footage not tied to an alert: 0 = next sweep")
    dismissed_alert_retention_hours: float = Field(
        0, ge=0, description="an alert dismissed as someone else (a false alert) is pseudonymised this long after its "
        "review: its crop, key and details go, the counts stay; 0 = at the next sweep")
    request_record_retention_days: float = Field(
        730, ge=0, description="a decided request's personal details (requester, evidence, note, letter) are erased "
        "this long after the decision; its kind, dates and decision stay for the public counts")
    snapshot_retention_hours: float = Field(
        24, ge=0, description="a deployment's watchlist snapshot is deleted this long after its end")
    signage_max_age_days: int = Field(90, ge=0, description="a signage check older than this is not current")
    watchlist_max_size: int = Field(2000, gt=0, description="no watchlist may have a size cap above this")
    min_authorising_rank: str = Field(
        "superintendent", description="lowest police rank that may approve agreements and authorise deployments")
    min_entry_quality: float = Field(
        0.1, ge=0, le=1, description="lowest face quality score an image may have to be shared or put on a watchlist "
        "(measured on the shared data: docs/governance.md, bench/quality_floor.py)")
    max_deployment_hours: float = Field(72, gt=0, description="longest window a deployment may be requested for")
    urgent_min_rank: str = Field(
        "inspector", description="lowest police rank that may authorise a deployment by the urgency route")
    urgent_review_hours: float = Field(
        24, gt=0, description="an urgent authority must be reviewed by an officer of the usual rank within this; "
        "unreviewed, the deployment ends")
    entry_review_warning_days: int = Field(
        7, ge=0, description="entries this close to review are flagged to the authoriser")
    signage_backdate_days: int = Field(
        2, ge=0, description="a signage check may be recorded at most this many days after it was made")
    checkpoint_interval_minutes: float = Field(
        15, gt=0, description="the audit chain's head is signed at least this often while anything is written")
    login_attempts: int = Field(5, gt=0, description="failed logins allowed per user name and place...")
    login_window_seconds: float = Field(
        300, gt=0, description="...within this many seconds; then a lockout that doubles")
    login_place_attempts: int = Field(
        100, gt=0, description="failed logins allowed per place (client address) whatever the names, per window: "
                               "stops a spray of guesses across many names")

    @field_validator("min_authorising_rank", "urgent_min_rank")
    @classmethod
    def _known_rank(cls, value: str) -> str:
        from openlfr.governance.ranks import RANKS

        if value not in RANKS:
            raise ValueError(f"unknown police rank {value!r}; known ranks: {', '.join(RANKS)}")
        return value


class ApiSettings(BaseSettings):
    """Session lifetimes, upload limits, login throttling and the public page's contact text."""

    model_config = SettingsConfigDict(env_prefix=PREFIX + "API_", extra="ignore", env_ignore_empty=True)

    session_minutes: float = Field(60 * 8, gt=0, description="a console login lasts this long")
    token_days: float = Field(30, gt=0, description="an API client token lasts this long")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="largest image upload accepted")
    login_attempts: int = Field(5, gt=0, description="failed logins allowed per user name and client address...")
    login_window_seconds: float = Field(
        300, gt=0, description="...within this many seconds; then a lockout that doubles")
    login_address_attempts: int | None = Field(
        None, gt=0, description="failed logins allowed per client address whatever the names, per window (stops a "
                                "spray across many names); default 20 times login_attempts")
    secure_cookies: bool | None = Field(
        None, description="send cookies only over HTTPS; by default on, except when the console is reached on "
                          "loopback (127.0.0.1, ::1, localhost) over plain HTTP")
    evaluation_reports: Path | None = Field(
        None, description="a folder of `openlfr evaluate openset --report DIR` folders, shown with their plots on "
                          "the console's reports page")
    complaints: str = Field(
        "Write to the data protection officer of the operator, or complain to the Information Commissioner's "
        "Office (ico.org.uk/make-a-complaint).", description="how the public can complain (transparency page)")


class ModelSettings(BaseSettings):
    """Which models run, on what, and where their files are."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    # before detector and face_model, whose validators read it
    models_file: Path | None = Field(
        None, description="a JSON file registering the operator's own ONNX embedders and detectors (docs/models.md)")
    backend: Backend = Field("auto", description="inference backend: cpu (ONNX Runtime), cuda, auto or dlib")
    detector: str = Field(
        "yunet", description="face detector: yunet (gives the 5 points SFace aligns on), mmod or hog (dlib), or one "
                             "registered in the models file")
    face_model: str = Field(
        "sface", description="the face model whose templates are made and matched: sface or dlib-resnet, or one "
                             "registered in the models file")
    model_dir: Path | None = Field(
        None, description="a folder holding other copies of the bundled dlib `.dat` model files")
    model_cache_dir: Path | None = Field(
        None, description="where converted models (ONNX graphs) are cached; default `<data_dir>/models`")
    calibration_cohort: Path | None = Field(
        None, description="faces of people on no watchlist (LFW layout or a flat folder): the impostor cohort from "
                          "which deployment requests that give a target false-alert rate get their threshold")

    @field_validator("face_model")
    @classmethod
    def _known_model(cls, value: str, info: ValidationInfo) -> str:
        return _registered(value, "face model", info.data.get("models_file"))

    @field_validator("detector")
    @classmethod
    def _known_detector(cls, value: str, info: ValidationInfo) -> str:
        return _registered(value, "detector", info.data.get("models_file"))


def _registered(name: str, kind: str, models_file: Path | None) -> str:
    """``name`` if the model registry knows it: a bundled model, or one the models file
    declares (only its name is read here; the registry checks the file when it loads it)."""
    from openlfr.face.registry import builtin

    reg = builtin()
    known = list(reg.embedders if kind == "face model" else reg.detectors)
    if name in known:
        return name
    if models_file is not None:
        from openlfr.errors import ModelError
        from openlfr.face.user_models import declared_names

        try:
            embedders, detectors = declared_names(models_file)
        except ModelError as err:  # refused as this setting's error, naming the file and why
            raise ValueError(str(err)) from None
        theirs = embedders if kind == "face model" else detectors
        if name in theirs:
            return name
        known += [n for n in theirs if n not in known]
    raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}")


class PipelineSettings(BaseSettings):
    """Images and video: the image gate, the folders recordings may be read from, progress."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    # the image gate (openlfr.face.image_gate): largest image decoded, read from its header first,
    # and the memory all decodes in this process may hold at once
    max_image_pixels: int = Field(25_000_000, gt=0, description="largest image decoded (pixels, read from its "
                                                                "header before decoding)")
    decode_budget_bytes: int = Field(512 * 1024 * 1024, gt=0, description="memory all image decodes in one "
                                                                          "process may hold at once")
    camera_file_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="folders cameras may read recordings from (separated by `:`); default "
                                          "`<data_dir>/recordings`")
    progress_seconds: float = Field(10, ge=0, description="long commands off a terminal print a progress line "
                                                          "this often")

    @field_validator("camera_file_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):  # the environment's form: folders separated by os.pathsep
            return [p for p in value.split(os.pathsep) if p.strip()]
        return value


class ClusterSettings(BaseSettings):
    """Many hosts on one PostgreSQL store: host agents and their camera leases, blobs, connections
    (docs/scale.md). On SQLite one machine holds every lease and the defaults serve as they are."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    host_id: str = Field("", max_length=200, description="this host agent's name in the camera leases; default "
                                                         "the machine's host name")
    capacity: int = Field(0, ge=0, description="most cameras this host agent analyses at once; 0: no limit")
    lease_seconds: float = Field(10, gt=0, description="a camera lease expires this long (database time) after "
                                                       "its last renewal; then another host may take the camera")
    renew_seconds: float = Field(2, gt=0, description="a host agent renews its leases and looks for free ones "
                                                      "this often")
    blobs: Literal["auto", "files", "database"] = Field(
        "auto", description="where encrypted blobs live: `files` under `<data_dir>/blobs`, `database` in the "
                            "store (every host reads them); `auto`: the database on PostgreSQL, files on SQLite")
    listen_url: str | None = Field(None, description="a direct PostgreSQL URL for LISTEN/NOTIFY when "
                                                     "`database_url` goes through PgBouncer in transaction mode; "
                                                     "default `database_url`")
    pool_size: int = Field(5, ge=1, description="database connections each API or host-agent process keeps open")
    worker_pool_size: int = Field(2, ge=1, description="database connections each camera worker process keeps "
                                                       "open")
    audit_lock_idle_seconds: float = Field(
        5, ge=0, description="PostgreSQL: a transaction holding the audit chain's head (every audited write "
                             "waits for it) is ended by the server once idle this long between two statements, "
                             "so a stopped or hung process cannot stall every writer; 0: never")

    @model_validator(mode="after")
    def _renew_within_lease(self) -> ClusterSettings:
        if self.renew_seconds * 2 > self.lease_seconds:
            raise ValueError(f"renew_seconds ({self.renew_seconds:g}) must be at most half of lease_seconds "
                             f"({self.lease_seconds:g}): a lease would expire between two renewals")
        return self


SECTIONS: dict[str, type[BaseSettings]] = {
    "store": StoreSettings, "policy": Policy, "api": ApiSettings, "models": ModelSettings,
    "pipeline": PipelineSettings, "cluster": ClusterSettings,
}


class Settings(BaseSettings):
    """openlfr's configuration: the data directory, the log options and one section per part."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("openlfr", appauthor=False)),
                           description="the store's folder: database, encrypted files, keys; default the user's "
                                       "data folder")
    # openlfr's own log records (openlfr.logs): least severe level shown, and their form
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="least severe log record "
                                                                                      "shown")
    log_format: Literal["text", "json"] = Field("text", description="log records as key=value text or JSON lines")
    store: StoreSettings = Field(default_factory=StoreSettings)
    policy: Policy = Field(default_factory=Policy)
    api: ApiSettings = Field(default_factory=ApiSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @property
    def model_cache_dir(self) -> Path:
        """Where converted models (ONNX graphs) are cached: ``<data_dir>/models`` by default."""
        return self.models.model_cache_dir or self.data_dir / "models"


def _place(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Sort flat overrides (``detector=...``) into the root's and each section's; a section may
    also be given whole (``models={"detector": ...}``)."""
    root: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for name, value in overrides.items():
        if name in SECTIONS:
            sections[name].update(value)
        elif name in Settings.model_fields:
            root[name] = value
        else:
            owners = [s for s, cls in SECTIONS.items() if name in cls.model_fields]
            if len(owners) != 1:
                raise TypeError(f"no single setting named {name!r}" + (f" (in {', '.join(owners)})" if owners else ""))
            sections[owners[0]][name] = value
    return root, sections


def _build(overrides: dict[str, Any]) -> Settings:
    """The environment with ``overrides`` on top (each section reads its own variables)."""
    root, sections = _place(overrides)
    given: dict[str, Any] = {**root, **{name: SECTIONS[name](**values) for name, values in sections.items()}}
    return Settings(**given)


def _environment_key() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(PREFIX)))


class _ProcessSettings:
    """The process's settings, kept until an ``OPENLFR_`` variable changes or :func:`configure`
    installs other overrides. Called as :func:`get_settings`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._overrides: dict[str, Any] = {}
        self._cached: tuple[tuple[tuple[str, str], ...], Settings] | None = None

    def __call__(self) -> Settings:
        """The process-wide settings: the environment, with :func:`configure`'s overrides on top."""
        key = _environment_key()
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        with self._lock:
            settings = _build(self._overrides)
            self._cached = (key, settings)
        return settings

    def install(self, overrides: dict[str, Any], settings: Settings) -> None:
        with self._lock:
            self._overrides = dict(overrides)
            self._cached = (_environment_key(), settings)

    def overrides(self) -> dict[str, Any]:
        return dict(self._overrides)

    def cache_clear(self) -> None:
        """Forget the settings and any overrides: the next call reads the environment alone."""
        with self._lock:
            self._overrides, self._cached = {}, None


get_settings = _ProcessSettings()


def configure(**overrides: Any) -> Settings:
    """Install the process-wide settings: the environment with ``overrides`` on top (the command
    line's global options by field name, e.g. ``detector="mmod"``; ``None`` values are ignored).
    ``os.environ`` is not written. Raises pydantic's ``ValidationError`` (nothing installed)."""
    given = {name: value for name, value in overrides.items() if value is not None}
    settings = _build(given)
    get_settings.install(given, settings)
    return settings


def overrides() -> dict[str, Any]:
    """The overrides :func:`configure` installed, to hand to another process (camera workers),
    which passes them to its own :func:`configure`."""
    return get_settings.overrides()


def env_name(section: str | None, field: str) -> str:
    """The environment variable of a setting (``OPENLFR_DETECTOR``, ``OPENLFR_API_TOKEN_DAYS``)."""
    cls: type[BaseModel] = SECTIONS[section] if section else Settings
    return f"{cls.model_config.get('env_prefix', PREFIX)}{field}".upper()


def invalid_setting(err: ValidationError) -> tuple[str, str, str]:
    """The first setting ``err`` refuses: its field name, its environment variable, and why
    (``"Input should be 'auto', 'cpu', 'cuda' or 'dlib', not 'torch'"``)."""
    first = err.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "setting"
    section = next((name for name, cls in SECTIONS.items() if cls.__name__ == err.title), None)
    message = first["msg"].removeprefix("Value error, ")
    shown = repr(first.get("input"))
    if shown not in message:
        message = f"{message}, not {shown}"
    return field, env_name(section, field), message
