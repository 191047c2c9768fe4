"""Settings of the HTTP API, each overridable as ``OPENLFR_API_<FIELD>``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Session lifetimes, upload limits, login throttling and the public page's contact text."""

    model_config = SettingsConfigDict(env_prefix="OPENLFR_API_", extra="ignore")

    session_minutes: float = Field(60 * 8, gt=0, description="a console login lasts this long")
    token_days: float = Field(30, gt=0, description="an API client token lasts this long")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="largest image upload accepted")
    login_attempts: int = Field(5, gt=0, description="failed logins allowed per user name and client address...")
    login_window_seconds: float = Field(300, gt=0, description="...within this many seconds; then a lockout that doubles")
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
