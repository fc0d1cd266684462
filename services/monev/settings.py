"""Monev's own settings (pydantic-settings), read from the same `PENA_` environment variables as the
kernel's; the kernel `Settings` knows nothing of them."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class MonevSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PENA_", env_file=".env", extra="ignore")

    # follow-up waves after a training completion (ISO-8601, calendar months): PENA_MONEV_DELAYS='["P3M","P6M"]'
    monev_delays: list[str] = ["P3M"]
    # how long after it came due a task becomes overdue: PENA_MONEV_GRACE
    monev_grace: str = "P30D"


@lru_cache
def get_monev_settings() -> MonevSettings:
    return MonevSettings()
