"""`make bench`: every benchmark at its default (small) size, one after the other (they would skew
each other on a small machine), then a summary table. Each ratio compares PENA with a bare baseline
measured in the same run; targets are reported, not asserted (shared machines are noisy).

python -m bench.run_all [--full] [--only scheduler,pipeline,...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from bench import backfill_import, bulk_import, catchup, memory, pipeline, registration, scheduler
from bench.common import Result, machine
from composition import infra

BENCHMARKS: dict[str, Callable[[bool], Coroutine[Any, Any, Result]]] = {
    "scheduler": scheduler.run,
    "pipeline": pipeline.run,
    "catchup": catchup.run,
    "registration": registration.run,
    "bulk_import": bulk_import.run,
    "backfill_import": backfill_import.run,
    "memory": memory.run,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the sizes named in the issue (slow)")
    parser.add_argument("--only", help="comma-separated benchmark names")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; one of {list(BENCHMARKS)}")
    infra.up()  # idempotent
    m = machine()
    print(f"machine: {m['nproc']} cpu ({m['cpu']}), {m['ram']} RAM, python {m['python']}, {m['date']}", flush=True)

    rows: list[tuple[str, str, str, str, str, str]] = []
    crashed = False
    for name in chosen:
        started = time.perf_counter()
        try:
            result = asyncio.run(BENCHMARKS[name](args.full))
        except Exception:
            traceback.print_exc()
            crashed = True
            rows.append((name, "-", "-", "CRASHED", "-", f"{time.perf_counter() - started:.0f}s"))
            continue
        print(result.render(), flush=True)
        took = f"{time.perf_counter() - started:.0f}s"
        rows.append((name, f"{result.ratio:.3g}", result.target_text, result.verdict, result.check or "-", took))
        for extra in result.extra:  # every ratio of the issue gets its row
            rows.append((f"  {extra.name}", f"{extra.ratio:.3g}", extra.target_text, extra.verdict, "-", ""))

    header = ("benchmark", "ratio", "target", "result", "generator headroom", "took")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("\nsummary (ratio = PENA vs the bare baseline of the same run)")
    for row in [header, *rows]:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
