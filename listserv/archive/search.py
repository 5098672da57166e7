# SPDX-License-Identifier: Apache-2.0
"""Full-text search of one list's archive: SQLite FTS5 or PostgreSQL tsvector, one syntax.

Input: a parsed `Query` (`archive.query`), a list and a page. Output: ranked
`Hit`s with the subject and a snippet of the body, the matched words marked
with `MARK_START`/`MARK_END` (private-use characters, so the page escapes
the text first and only then turns the marks into `<mark>`).

On SQLite each term is one quoted FTS5 string (its words are letters and
digits only), ranked by bm25 with the subject weighted over the body. On
PostgreSQL each term is a `phraseto_tsquery`, combined with `&&`, `||` and
`!!`, ranked by `ts_rank_cd` over the weighted `document` column. On
SQLite the words travel as a bound parameter; on PostgreSQL they are written
into the statement as literals (they are letters and digits only), so each
search is planned on its own words. Both stem English words
(`porter` and the `english` configuration); PostgreSQL also ignores its stop
words. Snippets are made in a second query for the page's rows only, since
making one costs far more than matching.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from listserv.archive.query import Query, Term
from listserv.models import ArchiveEntry

MARK_START = "\ue000"
MARK_END = "\ue001"

#: bm25 weights of subject, sender, sender name and body (FTS5 column order).
BM25_WEIGHTS = (10.0, 4.0, 4.0, 1.0)
#: How many of the newest matches are ranked.
RANK_WINDOW = 200
#: Of a long post, only this much text is looked at for a snippet.
SNIPPET_TEXT = 50_000

_fts = table("archive_fts", column("rowid", Integer))


@dataclass(frozen=True)
class Hit:
    post_id: int
    date: datetime
    sender: str
    sender_name: str
    subject: str  # with marks
    snippet: str  # with marks


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    page: int
    more: bool


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sender_filter(senders: list[str]) -> ColumnElement[bool]:
    """from:jane@agency.gov is that address; from:agency.gov that domain or its subdomains."""
    sender = func.lower(ArchiveEntry.sender)
    clauses: list[ColumnElement[bool]] = []
    for value in senders:
        if "@" in value:
            clauses.append(sender == value)
        else:
            escaped = _like_escape(value)
            clauses.append(sender.like(f"%@{escaped}", escape="\\"))
            clauses.append(sender.like(f"%.{escaped}", escape="\\"))
    return or_(*clauses)


def _filters(list_id: int, query: Query) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [ArchiveEntry.list_id == list_id]
    if query.senders:
        where.append(_sender_filter(query.senders))
    if query.since is not None:
        where.append(ArchiveEntry.date >= query.since)
    if query.until is not None:
        where.append(ArchiveEntry.date < query.until)
    return where


def fts5_expression(query: Query) -> str:
    """The FTS5 MATCH text: quoted strings joined by AND, OR and NOT.

    >>> from listserv.archive.query import parse_query
    >>> fts5_expression(parse_query('records "retention schedule" OR rims -draft'))
    '("records") AND ("retention schedule" OR "rims") NOT "draft"'
    """

    def quoted(term: Term) -> str:
        return '"' + " ".join(term.words).replace('"', '""') + '"'

    positive = " AND ".join("(" + " OR ".join(map(quoted, g)) + ")" for g in query.groups)
    return positive + "".join(f" NOT {quoted(t)}" for t in query.excluded)


def _pg_text(words: tuple[str, ...]) -> str:
    """A term's words as a PostgreSQL string literal.

    Words are letters, digits and underscores only (`archive.query`), so
    nothing here can end the literal; quotes and backslashes are still
    escaped, and `E''` reads them the same whatever the server's settings.
    """
    text = " ".join(words).replace("\\", "\\\\").replace("'", "''").replace("\x00", "")
    return f"E'{text}'"


def _tsquery(query: Query) -> str:
    """The tsquery as SQL with the words written in, not bound.

    The plan must depend on the words: a rare word is found through the GIN
    index, a common one by reading the newest posts first. With the words as
    parameters a prepared statement (psycopg prepares what runs often) gets one
    plan for all, and the tsquery is built again for every row it reads.
    """

    def term(t: Term) -> str:
        return f"phraseto_tsquery('english', {_pg_text(t.words)})"

    parts = ["(" + " || ".join(map(term, g)) + ")" for g in query.groups]
    parts += [f"(!! {term(t)})" for t in query.excluded]
    return "(" + " && ".join(parts) + ")"


def _matches(session: Session, list_id: int, query: Query) -> tuple[Select[Any], Any, Any]:
    """The matching posts' ids, newest first: (statement, id column, score or None).

    None: ranked by a join after the window (PostgreSQL).

    SQLite ranks in the match itself (bm25 exists only there). PostgreSQL ranks
    after the window's LIMIT: `ts_rank_cd` reads each row's whole tsvector, and
    in the match it would be read for every match, not only the window's.
    """
    where = _filters(list_id, query)
    if session.get_bind().dialect.name == "sqlite":
        pid: Any = _fts.c.rowid
        score: Any = func.bm25(literal_column("archive_fts"), *BM25_WEIGHTS)
        stmt = (
            select(pid.label("pid"), score.label("score"))
            .select_from(_fts)
            .join(ArchiveEntry, ArchiveEntry.post_id == _fts.c.rowid)
            .where(sql_text("archive_fts MATCH :match").bindparams(match=fts5_expression(query)))
        )
        return stmt.where(*where).order_by(pid.desc()), pid, score
    tsquery: Any = literal_column(_tsquery(query))
    document: Any = literal_column("archive_entries.document")
    pid = ArchiveEntry.post_id
    stmt = select(pid.label("pid")).where(document.op("@@")(tsquery))
    return stmt.where(*where).order_by(pid.desc()), pid, None


def _ranked(session: Session, query: Query, matches: Select[Any], has_score: bool) -> list[int]:
    """The window of the newest matches, best first."""
    window = matches.limit(RANK_WINDOW).subquery()
    if has_score:
        order: list[Any] = [window.c.score, window.c.pid.desc()]
        return list(session.scalars(select(window.c.pid).order_by(*order)))
    ranked = ArchiveEntry.__table__.alias("ranked")
    score = -func.ts_rank_cd(literal_column("ranked.document"), literal_column(_tsquery(query)))
    stmt = (
        select(window.c.pid)
        .join(ranked, ranked.c.post_id == window.c.pid)
        .order_by(score, window.c.pid.desc())  # lower is better, as bm25
    )
    return list(session.scalars(stmt))


def _page(session: Session, list_id: int, query: Query, offset: int, limit: int) -> list[int]:
    """Post ids of one page of results, best first.

    The newest `RANK_WINDOW` matches are ranked (bm25 or ts_rank_cd) and come
    first; older matches, if there are more, follow newest first. Ranking
    every match of a word in half the archive would cost far more than the
    page, and the newest matches are what a reader of a list looks for.
    """
    if not query.has_words:
        stmt = select(ArchiveEntry.post_id).where(*_filters(list_id, query))
        stmt = stmt.order_by(ArchiveEntry.date.desc(), ArchiveEntry.post_id.desc())
        return list(session.scalars(stmt.limit(limit).offset(offset)))
    matches, _, score = _matches(session, list_id, query)
    ranked = _ranked(session, query, matches, score is not None)
    page = ranked[offset : offset + limit]
    if len(ranked) < RANK_WINDOW or offset + limit <= len(ranked):
        return page
    rest = max(0, offset - RANK_WINDOW)
    older = matches.offset(RANK_WINDOW + rest).limit(limit - len(page))
    return page + [int(row.pid) for row in session.execute(older)]


def _marked(session: Session, query: Query, ids: list[int]) -> dict[int, tuple[str, str]]:
    """(subject, snippet) with marks, for the given posts."""
    if not ids or not query.has_words:
        return {}
    if session.get_bind().dialect.name == "sqlite":
        marks = f"'{MARK_START}', '{MARK_END}'"
        stmt = sql_text(
            f"SELECT rowid, highlight(archive_fts, 0, {marks}), "
            f"snippet(archive_fts, 3, {marks}, ' … ', 24) FROM archive_fts "
            "WHERE archive_fts MATCH :match AND rowid IN "
            f"({', '.join(str(int(i)) for i in ids)})"
        ).bindparams(match=fts5_expression(query))
        return {int(r[0]): (str(r[1] or ""), str(r[2] or "")) for r in session.execute(stmt)}
    tsquery = _tsquery(query)
    options = f"StartSel={MARK_START}, StopSel={MARK_END}"
    stmt = sql_text(
        f"SELECT post_id, ts_headline('english', subject, ({tsquery}), "
        f"'{options}, HighlightAll=true'), "
        f"ts_headline('english', left(body, {SNIPPET_TEXT}), ({tsquery}), "
        f"'{options}, MaxWords=30, MinWords=12, MaxFragments=2, "
        'FragmentDelimiter=" … "\') '
        f"FROM archive_entries WHERE post_id IN ({', '.join(str(int(i)) for i in ids)})"
    )
    return {int(r[0]): (str(r[1] or ""), str(r[2] or "")) for r in session.execute(stmt)}


def newest_matches(
    session: Session, list_id: int, query: Query, *, before: int | None, limit: int
) -> list[int]:
    """Post ids matching `query` exactly as `search` matches, newest first, below `before`.

    For a keyset page (the API's): the same matches as the search page, in
    post order rather than ranked, so the next page starts after the last id.
    """
    if query.has_words:
        matches, pid, _ = _matches(session, list_id, query)
        if before is not None:
            matches = matches.where(pid < before)
        return [int(row.pid) for row in session.execute(matches.limit(limit))]
    stmt = select(ArchiveEntry.post_id).where(*_filters(list_id, query))
    if before is not None:
        stmt = stmt.where(ArchiveEntry.post_id < before)
    return list(session.scalars(stmt.order_by(ArchiveEntry.post_id.desc()).limit(limit)))


def search(
    session: Session, list_id: int, query: Query, *, page: int = 1, per_page: int = 20
) -> Results:
    """One page of the list's posts matching `query`, best first (newest first for from: alone)."""
    page = max(1, page)
    ids = _page(session, list_id, query, (page - 1) * per_page, per_page + 1)
    more = len(ids) > per_page
    ids = ids[:per_page]
    rows = {
        e.post_id: e
        for e in session.execute(
            select(
                ArchiveEntry.post_id,
                ArchiveEntry.date,
                ArchiveEntry.sender,
                ArchiveEntry.sender_name,
                ArchiveEntry.subject,
                func.substr(ArchiveEntry.body, 1, 240).label("opening"),
            ).where(ArchiveEntry.post_id.in_(ids))
        )
    }
    marked = _marked(session, query, ids)
    hits = []
    for post_id in ids:
        row = rows.get(post_id)
        if row is None:
            continue
        subject, snippet = marked.get(post_id, (row.subject, row.opening))
        hits.append(Hit(post_id, row.date, row.sender, row.sender_name, subject, snippet))
    return Results(hits, page, more)
