# SPDX-License-Identifier: Apache-2.0
"""Benchmark: `listserv members import` of 100,000 addresses into SQLite.

Writes a CSV roster (address, name, title) of N addresses across a few
hundred agency domains, with some ineligible, invalid and duplicate lines
mixed in as a real file has, then runs the real command in a child process
against a fresh SQLite database and prints the wall time and the child's
peak memory (max RSS). Aim: under 30 s and 200 MB for 100,000 addresses.

    .venv/bin/python benchmarks/import_members.py [--count 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from listserv.db import upgrade  # noqa: E402
from tests.admin_helpers import write_config  # noqa: E402


def write_roster(path: Path, count: int) -> dict[str, int]:
    """N records: ~98.5% eligible, 0.5% each ineligible, invalid, duplicate."""
    rng = random.Random(100_000)
    domains = [f"agency{i}.gov" for i in range(300)] + [f"unit{i}.army.mil" for i in range(100)]
    seen: list[str] = []
    kinds = {"good": 0, "ineligible": 0, "invalid": 0, "duplicate": 0}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["address", "name", "title"])
        for i in range(count):
            roll = rng.random()
            if roll < 0.005:
                writer.writerow([f"person{i}@example.com", f"Outside {i}", ""])
                kinds["ineligible"] += 1
            elif roll < 0.010:
                writer.writerow([f"broken{i}.agency.gov", "No At", ""])
                kinds["invalid"] += 1
            elif roll < 0.015 and seen:
                writer.writerow([rng.choice(seen).upper(), "Again", ""])
                kinds["duplicate"] += 1
            else:
                address = f"first{i}.last@{rng.choice(domains)}"
                if len(seen) < 5000:
                    seen.append(address)
                writer.writerow([address, f"First{i} Last", "Social Media Specialist"])
                kinds["good"] += 1
    return kinds


def run_import(config: Path, roster: Path, *extra: str) -> tuple[float, float, dict[str, object]]:
    """(seconds, peak MB, JSON summary) of one `members import` child process."""
    env = {**os.environ, "LISTSERV_CONFIG": str(config)}
    env.pop("LISTSERV_DATABASE_URL", None)
    started = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "listserv",
            "members",
            "import",
            "sm-cop",
            str(roster),
            "--json",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = child.communicate()
    # wait4 gives this child's own peak, not the maximum over all children.
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"import failed ({child.returncode}): {err.decode()[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, peak_kb / 1024, json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="Work in this directory and keep it.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="listserv-import-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{work / 'listserv.sqlite3'}"
    config = write_config(work / "listserv.toml", db_url, work / "var")
    upgrade(db_url)  # the schema exists, as on a running site

    roster = work / "roster.csv"
    kinds = write_roster(roster, args.count)
    size_mb = roster.stat().st_size / 1e6
    print(f"roster: {args.count:,} records, {size_mb:.1f} MB ({kinds})")

    seconds, peak, summary = run_import(config, roster)
    print(
        f"members import: {seconds:.1f} s, peak RSS {peak:.0f} MB — added {summary['added']:,}, "
        f"already {summary['already_members']:,}, duplicates {summary['duplicates']:,}, "
        f"refused {summary['refused']:,}"
    )
    print(
        f"  {args.count / seconds:,.0f} records/s; aim < 30 s and < 200 MB: "
        f"{'OK' if seconds < 30 and peak < 200 else 'MISSED'}"
    )
    again, peak2, summary2 = run_import(config, roster, "--dry-run")
    print(
        f"re-check of the same file (--dry-run, {summary2['already_members']:,} already members): "
        f"{again:.1f} s, peak RSS so far {peak2:.0f} MB"
    )
    if args.keep is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
