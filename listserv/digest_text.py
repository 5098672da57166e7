# SPDX-License-Identifier: Apache-2.0
"""The plain-text digest of RFC 1153, for members who read mail as text.

Input: the list, its posts since the last digest, the footer. Output: one
text/plain message: a preamble (the list, the date, volume and issue),
"Today's Topics", the FOIA notice once, then each post as its Date, From and
Subject headers and its readable text (HTML as text, attachments named but
left out), separated by RFC 1153's 30-hyphen line, and "End of … Digest".
A line of a post that would read as a separator is indented by one space.
Volume and issue are the year and the day of the year, so no counter is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime

from listserv.archive import headers
from listserv.archive.parts import Kind, parts_of
from listserv.html_text import html_to_text
from listserv.models import MailingList, Post

SEPARATOR = "-" * 30
TOPICS_END = "-" * 70


def _text_of(post: Post) -> str:
    pieces: list[str] = []
    for part in parts_of(headers.parse_raw(post.raw)):
        if part.kind is Kind.TEXT:
            pieces.append(part.text)
        elif part.kind is Kind.HTML:
            pieces.append(html_to_text(part.text))
        else:
            pieces.append(f"[attachment not included: {part.filename or part.content_type}]")
    lines = "\n".join(pieces).replace("\r\n", "\n").split("\n")
    return "\n".join(" " + line if line.rstrip() == SEPARATOR else line.rstrip() for line in lines)


def digest_subject(mlist: MailingList, now: datetime) -> str:
    return f"{mlist.display_name} Digest, Vol {now:%Y}, Issue {now.timetuple().tm_yday}"


def plain_digest_body(mlist: MailingList, posts: Sequence[Post], footer: str, now: datetime) -> str:
    """The digest's text (lines joined by LF; the caller encodes it for the wire)."""
    title = f"{mlist.display_name} Digest"
    issue = f"Volume {now:%Y} : Issue {now.timetuple().tm_yday}"
    out = [f"{title:<28}{now:%a, %d %b %Y}   {issue}", "", "Today's Topics:", ""]
    seen: set[str] = set()
    for post in posts:
        subject = post.subject or "(no subject)"
        if subject not in seen:
            seen.add(subject)
            out.append(f"    {subject}")
    out += ["", footer.strip(), "", TOPICS_END]
    for number, post in enumerate(posts):
        msg = headers.parse_raw(post.raw)
        when = headers.date(msg) or post.received_at
        sender = headers.header(msg, "From") or post.sender
        if number:
            out += ["", SEPARATOR]
        out += [
            "",
            f"Date: {format_datetime(when)}",
            f"From: {sender}",
            f"Subject: {post.subject or '(no subject)'}",
        ]
        if post.message_id:
            out.append(f"Message-ID: {post.message_id}")
        out += ["", _text_of(post).strip("\n")]
    end = f"End of {title}"
    out += ["", SEPARATOR, "", end, "*" * len(end), ""]
    return "\n".join(out)
