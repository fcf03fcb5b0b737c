"""Configuration, read from the environment (``BIBLIOVERSE_*``) once, at the edge.

Domain code never reads settings: the app factory, the CLI and the jobs pass what a
service needs as arguments.
"""

from __future__ import annotations

import re
import secrets
import socket
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BIBLIOVERSE_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="All state lives below this folder.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite in the data folder."
    )
    secret_key: str | None = Field(
        default=None,
        description="Signs session cookies; default is a random key kept in the data folder.",
    )
    default_locale: str = "en"
    default_timezone: str = "Asia/Shanghai"
    session_max_age_s: int = 8 * 3600
    api_token_ttl_s: int = 12 * 3600
    # Login throttling: failures in a sliding window lock the account or the address.
    # Closed loans of readers who keep no history lose their reader after this many days
    # (kept that long for disputes about a return).
    anonymise_loans_after_days: int = Field(default=30, ge=0, le=3650)
    # Notices to readers go out by e-mail when this is set (smtp://user:pass@host:port or
    # smtps://...); otherwise they wait in the notices table.
    smtp_url: str | None = None
    mail_from: str = "Biblioverse <library@biblioverse.invalid>"
    throttle_window_s: int = 15 * 60
    throttle_account_failures: int = 5
    throttle_address_failures: int = 30
    secure_cookies: bool = False
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: addresses
    # or networks, comma-separated ("10.0.0.5, 10.1.0.0/16"). Empty: none, not even this
    # machine, so a client cannot pose as another address to dodge sign-in throttling.
    trusted_proxies: str = Field(default="", max_length=2000)
    # The libraries' own networks (their readers' Wi-Fi): a phone on one is in that library
    # and may borrow by phone there without scanning a "you are here" sign.
    # "CODE=10.1.0.0/16,2001:db8::/48;CODE2=192.168.5.0/24" (library codes). Behind a
    # proxy, the phones' addresses count only if the proxy is in trusted_proxies.
    library_networks: str = Field(default="", max_length=4000)
    # Borrowing by phone: a "you are here" sign scanned counts this long.
    presence_minutes: int = Field(default=180, ge=5, le=24 * 60)
    # Smart shelves and sensors publish here (mqtt://user:password@host:1883); unset, the
    # app takes their messages over HTTP only.
    mqtt_url: str | None = None
    # A shelf reader, gate or sensor silent this long raises an "offline" alarm.
    device_offline_s: int = Field(default=300, ge=30, le=86_400)
    # How often the app looks for silent devices and for linkage actions to try again; 0
    # switches both off (tests).
    offline_check_s: int = Field(default=30, ge=0, le=3600)
    # SIP2: a connection that has not logged in this many seconds after connecting is
    # closed, and one address may hold this many such connections at once; logged-in
    # machines do not count, so a flood of silent sockets cannot lock the kiosks out.
    sip2_login_timeout_s: float = Field(default=10.0, gt=0, le=300)
    sip2_max_per_address: int = Field(default=16, ge=1, le=65_535)
    # Fees are kept in this currency (ISO 4217); a kiosk paying in another is refused.
    currency: str = Field(default="CNY", min_length=3, max_length=3)
    # Who may read /metrics (request counts and latencies by route). With a token (at least
    # 16 characters), a scraper that sends `Authorization: Bearer <token>`, from anywhere;
    # with none, a client on this machine only (127.0.0.0/8, ::1). A reverse proxy on this
    # machine must be in trusted_proxies (its clients' addresses then count) or every client
    # it passes on looks local: set a token there. Anyone else gets 404; disabled, everyone.
    metrics_enabled: bool = True
    metrics_token: str | None = Field(default=None, min_length=16)
    # `biblioverse backup` writes here unless told with --to (default: the current folder),
    # and `backup --prune` keeps the newest this many of the backups it named there.
    backup_dir: Path | None = None
    backup_keep: int = Field(default=7, ge=1, le=10_000)
    # Several nodes (ADR 0034): with a NATS server (nats://host:4222) the outbox's events go
    # to a JetStream stream once, and every node follows it; unset, one machine publishes
    # them in its own processes. The stream and its subjects (`<subject>.<topic>`) are named
    # here so that two platforms, or two tests, can share one server.
    nats_url: str | None = None
    nats_stream: str = Field(default="BIBLIOVERSE", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    nats_subject: str = Field(
        default="biblioverse.events", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
    )
    # How long the stream keeps events: a node down longer must rebuild its index.
    nats_max_age_s: int = Field(default=7 * 86_400, ge=60)
    # This node's name: its durable consumer of the stream, and, when set, its own folder
    # for derived state (the search index) below the data folder, `nodes/<node>/`. Unset,
    # the consumer is named after the host and the index stays where it always was.
    node: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'biblioverse.db').resolve()}"

    @property
    def node_name(self) -> str:
        """The node's durable consumer name: the setting, or the host's name made fit."""
        return self.node or re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64]

    @property
    def node_dir(self) -> Path:
        """Where this node keeps derived state: its own folder when named, else the data
        folder (one machine, as before)."""
        return self.data_dir / "nodes" / self.node if self.node else self.data_dir

    @property
    def index_dir(self) -> Path:
        return self.node_dir / "index" / "catalog"

    @property
    def index_built_file(self) -> Path:
        """When the index was last rebuilt from the database (ISO time, UTC): where a new
        node's consumer of the stream starts (ADR 0034)."""
        return self.node_dir / "index" / "catalog.built_at"

    @cached_property
    def effective_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        # Several workers sharing one data folder must share the key, so it lives on disk.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "secret_key"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip()


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
