"""Settings: one frozen object built from the environment at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable has a value Beacon cannot use; the message names it."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r}: must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    redis_url: str
    department_file: Path
    models_dir: Path
    # Seconds a staff member stays "on duty" after their last heartbeat.
    duty_ttl: int
    # How long conversations and transcripts are kept (the records schedule), in days.
    retention_days: int
    # Seconds to wait for Redis before treating it as down.
    redis_timeout: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        department = Path(env.get("BEACON_DEPARTMENT_FILE") or PROJECT_ROOT / "data/department.yml")
        redis_url = env.get("BEACON_REDIS_URL") or "redis://127.0.0.1:6379/0"
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"BEACON_REDIS_URL={redis_url!r}: expected redis://host:port/db")
        return cls(
            redis_url=redis_url,
            department_file=department,
            models_dir=Path(env.get("BEACON_MODELS_DIR") or PROJECT_ROOT / "models"),
            duty_ttl=_int(env, "BEACON_DUTY_TTL", 120),
            retention_days=_int(env, "BEACON_RETENTION_DAYS", 365),
            redis_timeout=float(_int(env, "BEACON_REDIS_TIMEOUT_MS", 2000)) / 1000,
        )
