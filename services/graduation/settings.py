"""Graduation's own settings (pydantic-settings), read from the same `PENA_` environment variables as
the kernel's; the kernel `Settings` knows nothing of them."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from pydantic_settings import BaseSettings, SettingsConfigDict


class GraduationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PENA_", env_file=".env", extra="ignore")

    # mentoring continues this long after a decision takes effect: PENA_MENTORING_PERIOD
    mentoring_period: str = "P4M"
    # how long a decision may be appealed: PENA_APPEAL_WINDOW
    appeal_window: str = "P30D"


@lru_cache
def get_graduation_settings() -> GraduationSettings:
    return GraduationSettings()


GraduationSettingsDep = Annotated[GraduationSettings, Depends(get_graduation_settings)]
