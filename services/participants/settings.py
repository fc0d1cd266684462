"""The participants service's own settings (pydantic-settings), read from the same `PENA_` environment
variables as the kernel's; the kernel `Settings` knows nothing of them."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ParticipantsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PENA_", env_file=".env", extra="ignore")

    # lookups by NIK per authenticated subject and minute (PENA_NIK_LOOKUPS_PER_MINUTE), on top of
    # the general request limit: a lookup confirms or refutes a guessed NIK
    nik_lookups_per_minute: int = Field(default=30, ge=1)
    # how far a graduation decision's decided_at may lie ahead of this service's clock before the
    # event is refused (PENA_DECISION_CLOCK_SKEW_SECONDS)
    decision_clock_skew_seconds: int = Field(default=300, ge=0)
    # active PENA participants (statuses candidate and active) one KPM (household, one KK) may have at
    # once (PENA_HOUSEHOLD_ACTIVE_LIMIT): a further member is refused with 409 household_limit
    household_active_limit: int = Field(default=1, ge=1)


@lru_cache
def get_participants_settings() -> ParticipantsSettings:
    return ParticipantsSettings()
