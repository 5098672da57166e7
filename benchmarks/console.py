# SPDX-License-Identifier: Apache-2.0
"""Console page times at scale: 100,000 members, 10,000 held posts, a signed-in owner.

Seeds a SQLite database (members through the bulk roster path, their joins
spread over two years so the charts have history; held posts as the posting
stage stores them), opens a session as an owner who passed TOTP, then asks
each console page `--requests` times through the Starlette app in this
process (httpx's ASGI transport: the page's own work, no network) and prints
the median and 99th percentile per page. The member search runs a different
substring each time.

    .venv/bin/python benchmarks/console.py --members 100000 --held 10000 --requests 200
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from listserv import db, roster, signin  # noqa: E402
from listserv.actors import Auth  # noqa: E402
from listserv.config import settings_from_mapping  # noqa: E402
from listserv.lists import get_list  # noqa: E402
from listserv.models import Post, PostStatus, utcnow  # noqa: E402
from listserv.startup import prepare_database  # noqa: E402
from listserv.templates import Templates  # noqa: E402
from listserv.web import create_app  # noqa: E402
from listserv.web.signin.visitor import PLAIN_COOKIE  # noqa: E402
from tests.actors import as_actor  # noqa: E402

OWNER = "owner@digital.gov"
RAW = (
    b"From: Sam <sam{n}@agency.gov>\r\nTo: sm-cop@lists.example.gov\r\n"
    b"Subject: Question {n}\r\nMessage-ID: <{n}@agency.gov>\r\n\r\nHello, list.\r\n"
)


def settings_for(var: Path):  # type: ignore[no-untyped-def]
    data = {
        "site": {
            "domain": "lists.example.gov",
            "secret": "bench-secret-0123456789",
            "var_dir": str(var),
        },
        "web": {"base_url": "http://127.0.0.1:8080"},
        "lists": [
            {
                "name": "sm-cop",
                "display_name": "SM-COP",
                "owners": [OWNER],
                "join_phrases": ["Join the Social Media Community"],
                "eligible_domains": ["gov", "mil"],
            }
        ],
    }
    return settings_from_mapping(data, environ={}, base=var)


def seed(settings, members: int, held: int) -> tuple[object, str]:  # type: ignore[no-untyped-def]
    engine, factory = prepare_database(settings)
    started = time.perf_counter()
    with db.session_scope(factory) as session:
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        people = (
            roster.NewMember(
                f"person{i}@agency{i % 97}.gov", f"person{i}@agency{i % 97}.gov", f"Person {i}"
            )
            for i in range(members)
        )
        roster.add_members_bulk(session, mlist, people, audit_each=False, actor=as_actor("bench"))
        session.execute(
            text("UPDATE membership_events SET at = datetime(at, '-' || (id % 730) || ' days')")
        )
        now = utcnow()
        rows = []
        for n in range(held):
            raw = RAW.replace(b"{n}", str(n).encode())
            rows.append(
                {
                    "list_id": mlist.id,
                    "status": PostStatus.HELD,
                    "reason": "not a member",
                    "sender": f"sam{n}@agency.gov",
                    "sender_name": "Sam",
                    "subject": f"Question {n}",
                    "message_id": f"<{n}@agency.gov>",
                    "in_reply_to": "",
                    "raw": raw,
                    "sha256": hashlib.sha256(raw).hexdigest(),
                    "received_at": now,
                    "decided_by": "",
                    "decorated_size": 0,
                    "decorated_sha256": "",
                    "recipient_count": 0,
                }
            )
        session.execute(insert(Post), rows)
        raw_id, _ = signin.open_session(session, settings, OWNER, OWNER, Auth.LINK_TOTP, utcnow())
    print(
        f"seeded {members:,} members and {held:,} held posts in {time.perf_counter() - started:.1f} s"
    )
    return (engine, factory), raw_id


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def measure(settings, factory, raw_id: str, requests: int) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings, factory, Templates())
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8080", cookies={PLAIN_COOKIE: raw_id}
    ) as client:
        pages = {
            "/admin": lambda i: "/admin",
            "dashboard": lambda i: "/admin/lists/sm-cop",
            "held queue": lambda i: "/admin/lists/sm-cop/held",
            "held queue, page 150": lambda i: "/admin/lists/sm-cop/held?page=150",
            "held post": lambda i: f"/admin/lists/sm-cop/held/{1 + i * 37 % 10000}",
            "requests": lambda i: "/admin/lists/sm-cop/requests",
            "members": lambda i: "/admin/lists/sm-cop/members",
            "member search": lambda i: f"/admin/lists/sm-cop/members?q=person{i * 7919 % 100000}",
            "audit log": lambda i: "/admin/lists/sm-cop/audit",
        }
        print(f"{'page':<24} {'p50 ms':>8} {'p99 ms':>8}")
        for name, path in pages.items():
            for i in range(5):  # warm-up
                assert (await client.get(path(i))).status_code == 200, path(i)
            times = []
            for i in range(requests):
                started = time.perf_counter()
                response = await client.get(path(i))
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path(i), response.status_code)
            print(f"{name:<24} {percentile(times, 0.5):8.1f} {percentile(times, 0.99):8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--held", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp))
        (engine, factory), raw_id = seed(settings, args.members, args.held)
        try:
            asyncio.run(measure(settings, factory, raw_id, args.requests))
        finally:
            engine.dispose()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
