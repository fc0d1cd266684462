"""The bare baseline for the registration benchmark: FastAPI + asyncpg, one INSERT per request, no
validation beyond pydantic types, no encryption, no audit, no outbox. Run with
`BENCH_BARE_DSN=postgresql://... uvicorn bench.bare_app:app`."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

import asyncpg
from fastapi import FastAPI
from pydantic import BaseModel

TABLE = """
CREATE TABLE IF NOT EXISTS participants (
    id uuid PRIMARY KEY, nik text NOT NULL UNIQUE, kk_number text NOT NULL, full_name text NOT NULL,
    birth_date date NOT NULL, sex text NOT NULL, region_code text NOT NULL, business_field text,
    created_at timestamptz NOT NULL DEFAULT now())
"""


class ParticipantIn(BaseModel):
    nik: str
    kk_number: str
    full_name: str
    birth_date: date
    sex: str
    region_code: str
    business_field: str | None = None
    consent: dict[str, str] | None = None  # accepted and ignored: the baseline only inserts the row


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # the same pool as the service in the benchmark (bench/server.py: db_pool_size 20, no overflow)
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_BARE_DSN"], min_size=10, max_size=20)
    await app.state.pool.execute(TABLE)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/participants", status_code=201)
async def register(body: ParticipantIn) -> dict[str, str]:
    new_id = uuid.uuid4()
    await app.state.pool.execute(
        "INSERT INTO participants (id, nik, kk_number, full_name, birth_date, sex, region_code, business_field)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        new_id,
        body.nik,
        body.kk_number,
        body.full_name,
        body.birth_date,
        body.sex,
        body.region_code,
        body.business_field,
    )
    return {"id": str(new_id)}
