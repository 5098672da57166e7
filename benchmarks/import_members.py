# SPDX-License-Identifier: Apache-2.0
"""Benchmark: `listserv members import` of 100,000 (or 1,000,000) addresses.

Writes a CSV roster (address, name, title) of N addresses across a few
hundred agency domains, with some ineligible, invalid and duplicate lines
mixed in as a real file has, then runs the real command in a child process
against a fresh database (SQLite, or the PostgreSQL database named by
--database-url, whose schema is dropped and made again) and prints the wall
time and the child's peak memory (its own max RSS, from wait4). Aims: under
30 s and 200 MB for 100,000 addresses; under 3 minutes and 300 MB for
1,000,000 (`--webhook`: the same with a webhook listening for member.joined,
so the import also queues one delivery per member). Then `members export` and `members list --json` of the imported
roster: time to the first line (aim: under a second), total, and peak memory.

    .venv/bin/python benchmarks/import_members.py [--count 100000] [--keep DIR]
    .venv/bin/python benchmarks/import_members.py --count 1000000 \
        --database-url postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
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
    assert child.stdout is not None and child.stderr is not None
    out = child.stdout.read()
    err = child.stderr.read()
    # wait4 gives this child's own peak, not the maximum over all children.
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):  # 3: some lines were refused, as this roster means some to be
        raise SystemExit(f"import failed ({code}): {err.decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, json.loads(out)


def run_listing(config: Path, *args: str) -> tuple[float, float, float, int]:
    """(seconds to the first line, seconds in all, peak MB, lines) of one listing child."""
    env = {**os.environ, "LISTSERV_CONFIG": str(config)}
    env.pop("LISTSERV_DATABASE_URL", None)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "listserv", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert child.stdout is not None
    first = 0.0
    lines = 0
    for _ in child.stdout:
        if not lines:
            first = time.perf_counter() - started
        lines += 1
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed")
    return first, time.perf_counter() - started, usage.ru_maxrss / 1024, lines


def fresh_database(url: str | None, work: Path) -> str:
    """A SQLite file in `work`, or the PostgreSQL database `url` emptied."""
    if url is None:
        return f"sqlite:///{work / 'listserv.sqlite3'}"
    from sqlalchemy import text

    from listserv.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="Work in this directory and keep it.")
    parser.add_argument(
        "--database-url", help="A PostgreSQL database to empty and use (default: SQLite)."
    )
    parser.add_argument(
        "--webhook",
        action="store_true",
        help="First add a webhook for member.joined, so every member added queues a delivery.",
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="listserv-import-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db_url = fresh_database(args.database_url, work)
    config = write_config(work / "listserv.toml", db_url, work / "var")
    upgrade(db_url)  # the schema exists, as on a running site

    if args.webhook:
        hook = ("webhooks", "add", "https://hooks.example.com/x", "--events", "member.joined")
        run_listing(config, *hook, "--list", "sm-cop")
        print("a webhook listens for member.joined on sm-cop")

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
    limit_s, limit_mb = (180, 300) if args.count > 100_000 else (30, 200)
    print(
        f"  {args.count / seconds:,.0f} records/s on {db_url.partition(':')[0]}; "
        f"aim < {limit_s} s and < {limit_mb} MB: "
        f"{'OK' if seconds < limit_s and peak < limit_mb else 'MISSED'}"
    )
    again, peak2, summary2 = run_import(config, roster, "--dry-run")
    print(
        f"re-check of the same file (--dry-run, {summary2['already_members']:,} already members): "
        f"{again:.1f} s, peak RSS {peak2:.0f} MB"
    )
    for command in (("members", "export", "sm-cop"), ("members", "list", "sm-cop", "--json")):
        first, total, peak3, lines = run_listing(config, *command)
        print(
            f"{' '.join(command[:2])}{' --json' if '--json' in command else ''}: "
            f"first line after {first:.2f} s, {lines:,} lines in {total:.1f} s, "
            f"peak RSS {peak3:.0f} MB (aim: first line < 1 s, flat memory)"
        )
    if args.keep is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
