"""The one Settings object: flags override LI2_* environment variables; unsafe values refused."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

CORES = os.cpu_count() or 1


class SettingsError(ValueError):
    """A setting that the server refuses to start with."""


def _store_kind(url: str) -> str | None:
    """"sqlite" or "postgresql" for a database URL, None for anything else."""
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return "sqlite"
    return "postgresql" if urlsplit(url).scheme in ("postgresql", "postgres") else None


class Settings(BaseModel):
    """Server settings; env var for field ``x`` is ``LI2_X`` (lists are comma-separated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)  # 0 = any free port (tests)
    data_dir: Path = Path("data")
    store: Literal["sqlite", "postgresql", "memory"] = "sqlite"  # set by database_url
    database_url: str | None = Field(None, description="sqlite:///path or postgresql://user@"
                                     "host:port/db (default: runs.sqlite in data_dir)")
    runner: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(None, description="none: start a local Ray; auto or "
                                    "ray://host:port: join a cluster")
    max_jobs: int | None = Field(None, ge=1, le=100_000,
                                 description="jobs training at once (default: the runner's CPUs)")
    quota: int = Field(2, ge=1, le=100, description="active (queued + running) runs per client")
    max_queued: int = Field(64, ge=0, le=10_000, description="queued runs over all clients")
    sweep_quota: int = Field(1, ge=1, le=100, description="active sweeps per client")
    max_queued_sweeps: int = Field(16, ge=0, le=1000, description="queued sweeps in all")
    instructor_token: str | None = Field(None, description="required to create/cancel/delete")
    wall_time_limit: float = Field(3600.0, gt=0, le=7 * 24 * 3600, description="seconds per run")
    cancel_grace: float = Field(5.0, ge=0, le=600, description="seconds before a stop is forced")
    allowed_origins: tuple[str, ...] = ()
    start_method: Literal["forkserver", "spawn"] = "forkserver"
    snapshot_hz: float = Field(10.0, gt=0, le=1000, description="live snapshot frames per run")
    replay_buffer_bytes: int = Field(8 << 20, ge=1 << 16, le=1 << 30)
    viewer_backlog: int = Field(4096, ge=16, le=1_000_000, description="unsent text frames "
                                "before a viewer is dropped as too slow")
    public_url: str | None = Field(None, description="address students reach the server at, "
                                   "e.g. http://10.0.0.5:8000 (classroom links, QR codes)")
    bundle_max_bytes: int = Field(256 << 20, ge=1 << 10, le=4 << 30,
                                  description="largest run bundle POST /api/bundles accepts")
    # hardening (docs/security.md)
    client_secret: str | None = Field(None, min_length=16, description="signs client cookies "
                                      "(default: a random one kept in data_dir)")
    json_max_bytes: int = Field(1 << 20, ge=1 << 12, le=64 << 20,
                                description="largest JSON request body")
    run_snapshot_bytes: int = Field(64 << 20, ge=1 << 20, le=64 << 30, description="stored "
                                    "snapshot bytes per run before snapshots are thinned")
    storage_reserve_bytes: int = Field(2 << 20, ge=0, le=64 << 30, description="free disk "
                                       "below which runs stop writing and fail, naming storage")

    @field_validator("max_jobs")
    @classmethod
    def _no_oversubscription(cls, v: int | None, info: ValidationInfo) -> int | None:
        # under Ray the cluster's CPUs bound it (the runner reports them once connected)
        if info.data.get("runner") == "local" and v is not None and v > CORES:
            raise ValueError(f"{v} concurrent jobs on {CORES} cores would oversubscribe the "
                             f"machine; use at most {CORES}")
        return v

    @field_validator("ray_address")
    @classmethod
    def _ray_only(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v and info.data.get("runner") != "ray":
            raise ValueError("only used with runner ray (--runner ray / LI2_RUNNER=ray)")
        if v and v != "auto" and not v.startswith("ray://") and ":" not in v:
            raise ValueError(f"expected auto, ray://host:port or host:port, got {v!r}")
        return v or None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, v: str | None) -> str | None:
        if v and _store_kind(v) is None:
            raise ValueError(f"expected sqlite:///path or postgresql://user@host:port/db, "
                             f"got {v!r}")
        return v or None

    @model_validator(mode="before")
    @classmethod
    def _store_from_url(cls, values):
        url = values.get("database_url") if isinstance(values, dict) else None
        if url and (kind := _store_kind(url)):
            values = {**values, "store": kind}
        return values

    @field_validator("instructor_token", mode="before")
    @classmethod
    def _strong_token(cls, v):
        if v is None or v == "":
            return None
        if not isinstance(v, str) or len(v) < 12 or v != v.strip():
            raise ValueError("must be at least 12 characters without surrounding spaces")
        return v

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, v):
        items = [s.strip() for s in v.split(",")] if isinstance(v, str) else list(v)
        origins = tuple(s.rstrip("/") for s in items if s)
        for origin in origins:
            parts = urlsplit(origin)
            if "*" in origin or parts.scheme not in ("http", "https") or not parts.netloc \
                    or parts.path:
                raise ValueError(f"{origin!r} is not an origin like https://host[:port] "
                                 "(wildcards are refused)")
        return origins

    @field_validator("public_url", mode="before")
    @classmethod
    def _public_url(cls, v):
        if v is None or v == "":
            return None
        parts = urlsplit(str(v).strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query \
                or parts.fragment:
            raise ValueError(f"{v!r} is not an address like http://host[:port][/prefix]")
        return str(v).strip().rstrip("/")

    @field_validator("data_dir")
    @classmethod
    def _dir_usable(cls, v: Path) -> Path:
        if v.exists() and not v.is_dir():
            raise ValueError(f"{v} exists and is not a directory")
        return v

    @property
    def database_path(self) -> Path:
        """The SQLite file (``sqlite:///relative`` or ``sqlite:////absolute``)."""
        if self.database_url and self.store == "sqlite":
            return Path(self.database_url.removeprefix("sqlite:///"))
        return self.data_dir / "runs.sqlite"

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Defaults < LI2_* variables in ``env`` (default os.environ) < non-None overrides."""
        env = os.environ if env is None else env
        values = {}
        for name in cls.model_fields:
            key = f"LI2_{name.upper()}"
            if key in env:
                values[name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "settings"
                lines.append(f"{field} (LI2_{field.upper()}): {err['msg']}")
            raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
