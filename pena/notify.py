"""Wake-ups through PostgreSQL LISTEN/NOTIFY: a worker that polls (the scheduler) listens on a channel
so that a committed transaction can wake it at once. NOTIFY is delivered on commit only, once per
channel per transaction, so a rolled-back change wakes nobody."""

from __future__ import annotations

import asyncio

from pena.db import Database


async def listen(db: Database, channel: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """Sets `wake` on every notification of `channel` until `stop`; reconnects after a database restart
    (and sets `wake` then: notifications may have been missed while not listening)."""
    while not stop.is_set():
        conn = None
        try:
            conn = await db.raw_connection()
            await conn.add_listener(channel, lambda *_: wake.set())
            wake.set()
            while not stop.is_set() and not conn.is_closed():
                await asyncio.sleep(1.0)
        except asyncio.CancelledError:
            raise
        except Exception:
            await wait_any(stop, asyncio.Event(), 1.0)
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close()


async def wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    """Returns when `stop` or `wake` is set, or after `timeout` seconds."""
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
