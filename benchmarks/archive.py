# SPDX-License-Identifier: Apache-2.0
"""The web archive at size: import, search, month and post pages over `--posts` posts.

Generates an mbox of `--posts` posts (default 100,000) over `--months` months
with threads (about a third are replies carrying References, some only a
`Re:` subject), each a few hundred words from a vocabulary with a long tail,
then:

- imports it with `archive.import_archive` (the act `listserv archive import`
  runs) and prints messages per second and the resident memory at each
  tenth, so flat memory shows as flat numbers;
- asks the web app in-process (Starlette through httpx's ASGI transport, so
  routing, the access check, the queries and the templates are all counted
  but no socket is) for one- and two-word searches (common and rare words),
  month pages and post pages, and prints p50/p95/p99 in milliseconds.

    .venv/bin/python benchmarks/archive.py --posts 100000
    .venv/bin/python benchmarks/archive.py --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from listserv.actors import host_actor  # noqa: E402
from listserv.acts import archive  # noqa: E402
from listserv.app import prepare_database  # noqa: E402
from listserv.config import settings_from_mapping  # noqa: E402
from listserv.context import Context  # noqa: E402
from listserv.lists import get_list  # noqa: E402
from listserv.models import ArchiveEntry  # noqa: E402
from listserv.templates import Templates  # noqa: E402
from listserv.web import create_app  # noqa: E402

COMMON = [
    "records",
    "schedule",
    "social",
    "media",
    "policy",
    "agency",
    "account",
    "post",
    "comment",
    "guidance",
    "team",
    "content",
    "federal",
    "public",
    "information",
    "review",
    "question",
    "answer",
    "platform",
    "video",
    "image",
    "accessibility",
    "caption",
    "training",
    "meeting",
    "share",
    "update",
    "office",
    "program",
]
RARE_STEMS = ["zephyr", "quokka", "basalt", "lumen", "fjord", "sorrel", "vellum", "cobalt"]


def vocabulary(size: int = 5000) -> list[str]:
    rng = random.Random(7)
    words = list(COMMON)
    while len(words) < size:
        words.append(
            "".join(rng.choice("abcdefghijklmnoprstuvw") for _ in range(rng.randint(4, 9)))
        )
    return words + RARE_STEMS


def write_mbox(path: Path, posts: int, months: int) -> None:
    rng = random.Random(42)
    words = vocabulary()
    weights = [1.0 / (i + 1) for i in range(len(words))]
    start = datetime(2022, 1, 1, tzinfo=UTC)
    step = timedelta(days=30 * months) / posts
    recent: list[tuple[str, str, str]] = []  # (message-id, references, subject)
    with path.open("w", encoding="utf-8") as out:
        for n in range(posts):
            date = start + step * n
            sender = f"user{rng.randint(1, 1500)}@agency{rng.randint(1, 60)}.gov"
            body_words = rng.choices(words, weights, k=rng.randint(80, 400))
            headers = [f"From: Member {n % 1500} <{sender}>", f"Date: {format_datetime(date)}"]
            mid = f"<p{n}@bench.example.gov>"
            if recent and rng.random() < 0.35:
                parent_id, parent_refs, subject = rng.choice(recent[-40:])
                refs = f"{parent_refs} {parent_id}".strip()
                subject = "Re: " + subject.removeprefix("Re: ")
                if rng.random() < 0.85:
                    headers += [f"In-Reply-To: {parent_id}", f"References: {refs}"]
                else:
                    refs = ""
            else:
                subject = " ".join(rng.choices(words[:400], k=rng.randint(3, 7))).capitalize()
                refs = ""
            headers += [f"Subject: {subject}", f"Message-ID: {mid}", "MIME-Version: 1.0"]
            headers += ["Content-Type: text/plain; charset=utf-8"]
            lines = [" ".join(body_words[i : i + 12]) for i in range(0, len(body_words), 12)]
            stamp = date.strftime("%a %b %d %H:%M:%S %Y")
            out.write(f"From {sender} {stamp}\n" + "\n".join(headers) + "\n\n")
            out.write("\n".join(lines) + "\n\n")
            recent.append((mid, refs, subject))
            if len(recent) > 200:
                del recent[:100]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def settings_for(url: str, var: Path) -> object:
    return settings_from_mapping(
        {
            "site": {"domain": "lists.example.gov", "secret": "b" * 40, "var_dir": str(var)},
            "database": {"url": url},
            "delivery": {"maildir": str(var / "mail")},
            "web": {"base_url": "http://127.0.0.1:8080"},
            "lists": [
                {
                    "name": "sm-cop",
                    "display_name": "SM-COP",
                    "owners": ["owner@digital.gov"],
                    "eligible_domains": ["gov", "mil"],
                    "archive_access": "public",
                }
            ],
        }
    )


def import_posts(settings: object, factory: object, mbox: Path, posts: int) -> None:
    size = mbox.stat().st_size
    marks = {round(size * k / 10) for k in range(1, 11)}
    memory: list[str] = []
    next_mark = sorted(marks)

    def progress(read: int) -> None:
        while next_mark and read >= next_mark[0]:
            next_mark.pop(0)
            memory.append(f"{rss_mb():.0f}")

    with factory() as session:  # type: ignore[operator]
        ctx = Context(session=session, settings=settings, templates=Templates())  # type: ignore[arg-type]
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        started = time.perf_counter()
        result = archive.import_archive(ctx, host_actor(), mlist, [mbox], progress=progress)
        session.commit()
        elapsed = time.perf_counter() - started
    print(
        f"import: {result.imported} posts in {elapsed:.1f} s = {result.imported / elapsed:,.0f}/s "
        f"(skipped {result.skipped}, unreadable {len(result.unreadable)})"
    )
    print(f"import: resident MB at each tenth: {', '.join(memory)}")


def percentiles(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100)
    print(
        f"{label:<28} n={len(ordered):<5} p50={q[49]:6.1f} ms  p95={q[94]:6.1f} ms  p99={q[98]:6.1f} ms"
    )


async def measure(app: object, base: str, factory: object, rounds: int) -> None:
    rng = random.Random(3)
    with factory() as session:  # type: ignore[operator]
        months = [m for (m,) in session.execute(select(ArchiveEntry.month).distinct())]
        ids = [i for (i,) in session.execute(select(ArchiveEntry.post_id))]
    words = vocabulary()
    one = [rng.choice(COMMON) for _ in range(rounds // 2)] + [
        rng.choice(words[100:]) for _ in range(rounds // 2)
    ]
    two = [f"{rng.choice(COMMON)} {rng.choice(words[:600])}" for _ in range(rounds)]
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:

        async def timed(paths: list[str]) -> list[float]:
            out = []
            for path in paths:
                started = time.perf_counter()
                response = await client.get(path)
                out.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            return out

        await timed([f"/lists/sm-cop/archive/search?q={w}" for w in one[:20]])  # warm up
        percentiles(
            "search, one word", await timed([f"/lists/sm-cop/archive/search?q={w}" for w in one])
        )
        percentiles(
            "search, two words", await timed([f"/lists/sm-cop/archive/search?q={w}" for w in two])
        )
        percentiles(
            "month page",
            await timed([f"/lists/sm-cop/archive/{rng.choice(months)}" for _ in range(rounds)]),
        )
        percentiles(
            "post page",
            await timed([f"/lists/sm-cop/archive/msg/{rng.choice(ids)}" for _ in range(rounds)]),
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=400, help="requests per kind of page")
    parser.add_argument("--database-url", default="", help="PostgreSQL (default: a SQLite file)")
    parser.add_argument(
        "--keep-schema",
        action="store_true",
        help="PostgreSQL: keep the benchmark's schema afterwards (its name is printed)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        schema = ""
        url = f"sqlite:///{var / 'bench.db'}"
        if args.database_url:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(
                args.database_url.replace("postgresql://", "postgresql+psycopg://")
            )
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            url = f"{args.database_url}?options=-csearch_path%3D{schema}"
        try:
            mbox = var / "archive.mbox"
            started = time.perf_counter()
            write_mbox(mbox, args.posts, args.months)
            print(
                f"generated {args.posts} posts ({mbox.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s"
            )
            settings = settings_for(url, var)
            engine, factory = prepare_database(settings)  # type: ignore[arg-type]
            import_posts(settings, factory, mbox, args.posts)
            app = create_app(settings, factory, Templates())  # type: ignore[arg-type]
            asyncio.run(measure(app, "http://127.0.0.1:8080", factory, args.rounds))
            engine.dispose()
        finally:
            if schema and args.keep_schema:
                print(f"kept schema {schema}")
            elif schema:
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()


if __name__ == "__main__":
    main()
