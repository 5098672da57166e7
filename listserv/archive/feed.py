# SPDX-License-Identifier: Apache-2.0
"""The Atom feed (RFC 4287) of a public archive's latest posts.

Built with ElementTree, so every value is escaped as XML; addresses lose
their domain, as on the public pages, and each entry's summary is the
opening of the post's text, never its HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from listserv.archive.render import mask_addresses
from listserv.models import ArchiveEntry

ATOM = "http://www.w3.org/2005/Atom"
SUMMARY_LENGTH = 400
#: Characters XML 1.0 cannot carry at all.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _add(parent: ET.Element, tag: str, text: str = "", **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text:
        element.text = _NOT_XML.sub("", text)
    return element


def atom_feed(
    *, title: str, archive_url: str, feed_url: str, entries: Sequence[ArchiveEntry]
) -> bytes:
    feed = ET.Element("feed", {"xmlns": ATOM})
    _add(feed, "title", title)
    _add(feed, "id", feed_url)
    _add(feed, "link", rel="self", href=feed_url)
    _add(feed, "link", rel="alternate", type="text/html", href=archive_url)
    updated = max((e.date for e in entries), default=datetime(1970, 1, 1, tzinfo=UTC))
    _add(feed, "updated", _stamp(updated))
    for entry in entries:
        url = f"{archive_url}/msg/{entry.post_id}"
        item = _add(feed, "entry")
        _add(item, "title", entry.subject or "(no subject)")
        _add(item, "id", url)
        _add(item, "link", rel="alternate", type="text/html", href=url)
        _add(item, "updated", _stamp(entry.date))
        author = _add(item, "author")
        _add(author, "name", entry.sender_name or mask_addresses(entry.sender))
        summary = " ".join(mask_addresses(entry.body[: SUMMARY_LENGTH * 2]).split())
        _add(item, "summary", summary[:SUMMARY_LENGTH], type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body
