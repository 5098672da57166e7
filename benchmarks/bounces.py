# SPDX-License-Identifier: Apache-2.0
"""Bounce processing cost: reading DSNs at the bounces address, then scoring them.

On a SQLite file (durability on) with a list of `--members` members, routes
`--bounces` DSNs (Postfix-style, one per member in turn, half at VERP
addresses, half at the plain bounces address) through the router as the
processing stage does, one transaction each, then runs `score_bounces` over all
the events in one periodic run. Prints bounces per second for each half and
how long scoring takes.

    .venv/bin/python benchmarks/bounces.py --members 1500 --bounces 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from listserv import bounces, roster  # noqa: E402
from listserv.addresses import parse_recipient  # noqa: E402
from listserv.config import settings_from_mapping  # noqa: E402
from listserv.context import Context  # noqa: E402
from listserv.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from listserv.lists import get_list, sync_from_config  # noqa: E402
from listserv.message import parse_message  # noqa: E402
from listserv.models import InboundMessage, utcnow  # noqa: E402
from listserv.routing.delivery import Delivery  # noqa: E402
from listserv.routing.router import route  # noqa: E402
from listserv.templates import Templates  # noqa: E402
from tests.actors import as_actor  # noqa: E402
from tests.test_bounces import make_dsn  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1500)
    parser.add_argument("--bounces", type=int, default=2000)
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="listserv-bounces-"))
    url = f"sqlite:///{var / 'listserv.sqlite3'}"
    settings = settings_from_mapping(
        {
            "site": {"domain": "lists.example.gov", "secret": "x" * 32, "var_dir": str(var)},
            "database": {"url": url},
            "lists": [{"name": "sm-cop", "owners": ["owner@digital.gov"]}],
        },
        environ={},
    )
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    templates = Templates()
    addresses = [f"member{n:05d}@agency{n % 40}.gov" for n in range(args.members)]
    with factory() as session, session.begin():
        sync_from_config(session, settings)
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        for address in addresses:
            roster.add_member(session, mlist, address, actor=as_actor("bench", "cli"))

    start = utcnow() - timedelta(days=1)
    timings: dict[str, list[float]] = {"verp": [], "plain": []}
    for n in range(args.bounces):
        address = addresses[n % len(addresses)]
        local, _, domain = address.partition("@")
        style = "verp" if n % 2 == 0 else "plain"
        rcpt = (
            f"sm-cop-bounces+{local}={domain}@lists.example.gov"
            if style == "verp"
            else "sm-cop-bounces@lists.example.gov"
        )
        raw = make_dsn(address, to=rcpt)
        began = time.perf_counter()
        with factory() as session, session.begin():
            row = InboundMessage(mail_from="", rcpt_tos=[rcpt], raw=raw, size=len(raw))
            session.add(row)
            session.flush()
            recipient = parse_recipient(rcpt, settings.site.domains, "listserv")
            assert recipient is not None
            ctx = Context(session, settings, templates, now=start + timedelta(seconds=n))
            mlist = get_list(session, "sm-cop")
            route(ctx, Delivery(row, parse_message(raw), recipient, mlist, ""))
        timings[style].append(time.perf_counter() - began)

    began = time.perf_counter()
    with factory() as session, session.begin():
        ctx = Context(session, settings, templates)
        processed = bounces.score_bounces(ctx, utcnow())
    scoring = time.perf_counter() - began
    engine.dispose()

    for style, values in timings.items():
        total = sum(values)
        print(
            f"{style:5} bounces: {len(values)} in {total:.2f} s = {len(values) / total:.0f}/s "
            f"(mean {1000 * total / len(values):.1f} ms, one transaction each, "
            "scored on arrival)"
        )
    print(
        f"periodic run afterwards: {processed} events left to score, {scoring:.2f} s "
        f"for the time-based steps over {args.members} members"
    )


if __name__ == "__main__":
    main()
