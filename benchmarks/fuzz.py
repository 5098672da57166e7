# SPDX-License-Identifier: Apache-2.0
"""Long fuzzing run of the MIME decoration pipeline, the command parser and the DSN parser.

Runs each target of tests/fuzz_targets.py for `--seconds`, in rounds of
Hypothesis examples with fresh random seeds, and prints how many inputs each
target took and the crashes found (each shrunk by Hypothesis to a small
input, shown once per distinct exception). Exits 1 if anything crashed.

    .venv/bin/python benchmarks/fuzz.py --seconds 60
    .venv/bin/python benchmarks/fuzz.py --seconds 600 --target dsn
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.fuzz_targets import TARGETS, Target  # noqa: E402


def fuzz(target: Target, seconds: float, round_size: int) -> tuple[int, dict[str, str]]:
    """Inputs tried and crashes found (exception summary → shrunk input)."""
    tried = 0
    crashes: dict[str, str] = {}
    deadline = time.monotonic() + seconds
    failing: list[object] = []  # the last input that failed (Hypothesis re-runs the smallest last)
    while time.monotonic() < deadline:
        failing.clear()

        @settings(
            max_examples=round_size,
            deadline=None,
            database=None,
            derandomize=False,
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
        )
        @given(target.strategy)
        def check(value: object) -> None:
            nonlocal tried
            tried += 1
            try:
                target.run(value)
            except Exception:
                failing[:] = [value]
                raise

        try:
            check()
        except Exception as exc:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno}: {exc}"[:300]
            crashes.setdefault(key, repr(failing[0])[:500] if failing else "?")
    return tried, crashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per target")
    parser.add_argument("--round", type=int, default=500, help="examples per Hypothesis run")
    parser.add_argument("--target", choices=[t.name for t in TARGETS], action="append")
    args = parser.parse_args()
    chosen = [t for t in TARGETS if not args.target or t.name in args.target]
    found = 0
    for target in chosen:
        started = time.monotonic()
        tried, crashes = fuzz(target, args.seconds, args.round)
        elapsed = time.monotonic() - started
        print(
            f"{target.name:<11} {tried:>9,} inputs in {elapsed:6.1f} s "
            f"({tried / elapsed:,.0f}/s), {len(crashes)} crash(es)"
        )
        for summary, example in crashes.items():
            print(f"    {summary}\n      smallest input: {example}")
        found += len(crashes)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
