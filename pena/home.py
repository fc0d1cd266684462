"""Where local state lives: `.pena/` in the project, or PENA_HOME. The local infrastructure
(composition.infra) keeps PostgreSQL and Kafka there, and the kernel keeps the dev signing key there."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def pena_home() -> Path:
    home = Path(os.environ.get("PENA_HOME", PROJECT_ROOT / ".pena"))
    home.mkdir(parents=True, exist_ok=True)
    return home
