"""A service process for crash tests: runs the kernel probe publisher or consumer on Kafka with
its relay / consumer in the background, configured from PENA_ env vars (fail points included)."""

from __future__ import annotations

import asyncio
import sys

from pena.runtime import Runtime
from pena.settings import Settings
from tests.kernel import probe


async def main(role: str) -> None:
    definitions = {"publisher": [probe.publisher], "consumer": [probe.consumer]}[role]
    runtime = Runtime(Settings(), definitions, bus="kafka", workers=True)
    await runtime.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runtime.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
