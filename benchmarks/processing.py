# SPDX-License-Identifier: Apache-2.0
"""Processing alone: the cost of routing stored join requests, in this process.

Stores `--messages` join requests from distinct .gov senders in a fresh SQLite
database (durability on, as `listserv serve` runs it), then processes them with
`process_pending` in batches as the worker does once a burst is over, and
prints the rate and the CPU time a join costs. No SMTP, no delivery: this is
the processing stage's own price, the figure `benchmarks/intake.py` is bound by.

    .venv/bin/python benchmarks/processing.py --messages 3000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from intake import message, write_config  # noqa: E402

from listserv.config.loading import load_settings  # noqa: E402
from listserv.intake.inbound import Arrival, write_arrivals  # noqa: E402
from listserv.routing.processing import process_pending  # noqa: E402
from listserv.startup import make_templates, prepare_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=50, help="messages a transaction")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        settings = load_settings(write_config(var, 0), {})
        engine, factory = prepare_database(settings)
        templates = make_templates(settings)
        rcpt = ("sm-cop-request@lists.example.gov",)
        arrivals = [
            Arrival(f"user{i}@agency.gov", rcpt, message(i), "192.0.2.1")
            for i in range(args.messages)
        ]
        for start in range(0, len(arrivals), 500):
            write_arrivals(factory, arrivals[start : start + 500])
        process_pending(factory, settings, templates, 1, 1)  # warm: imports, templates
        wall, cpu = time.perf_counter(), time.process_time()
        done = 1
        while done < args.messages:
            n = process_pending(factory, settings, templates, 500, args.batch, budget=0.25)
            if n == 0:
                break
            done += n
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        engine.dispose()
    counted = done - 1
    print(f"join requests processed: {counted} in batches of {args.batch}")
    print(f"processed per second:    {counted / wall:,.0f}")
    print(f"CPU a join:              {cpu / counted * 1000:.2f} ms")
    print(f"wall a join:             {wall / counted * 1000:.2f} ms")


if __name__ == "__main__":
    main()
