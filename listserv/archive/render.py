# SPDX-License-Identifier: Apache-2.0
"""A post shown as HTML that cannot run, load or track anything.

Text parts are escaped and their web links made links; HTML parts go
through nh3 (the Ammonia sanitizer): no script, style, form, frame or image
survives, no event attribute, no `style`, and only http, https and mailto
links, each `rel="nofollow noopener noreferrer"`. The page's own CSP (no
script, images only from our origin) stands behind it. Attachments are
listed, never shown inline. For readers who are not signed in, addresses
lose their domain (`jane.doe@…`), so a public archive feeds no harvester.
Search marks (`search.MARK_START`/`MARK_END`) become `<mark>` after escaping.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import nh3
from markupsafe import Markup

from listserv.archive.parts import Kind, Part
from listserv.archive.search import MARK_END, MARK_START

#: What HTML mail may keep: text structure, tables, links; nothing that loads.
ALLOWED_TAGS = frozenset(nh3.ALLOWED_TAGS) - {"img", "map", "area"}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})

_ADDRESS = re.compile(r"\b([A-Za-z0-9._%+-]+)@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b")
_URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


@dataclass(frozen=True)
class Shown:
    """One part as the page shows it: HTML we made safe, or an attachment to list."""

    number: int
    kind: Kind
    html: Markup
    filename: str = ""
    content_type: str = ""
    size: int = 0


def mask_addresses(text: str) -> str:
    """`jane.doe@agency.gov` → `jane.doe@…`

    >>> mask_addresses("write to jane.doe@agency.gov today")
    'write to jane.doe@… today'
    """
    return _ADDRESS.sub(r"\1@…", text)


def sender_label(name: str, address: str, *, masked: bool) -> str:
    shown = mask_addresses(address) if masked else address
    return f"{name} <{shown}>" if name else shown


def sanitize_html(source: str) -> str:
    return nh3.clean(
        source,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="nofollow noopener noreferrer",
        clean_content_tags={"script", "style", "title", "head", "textarea", "select"},
        strip_comments=True,
    )


def _linkify(escaped: str) -> str:
    def link(match: re.Match[str]) -> str:
        url = match.group(0)
        return f'<a href="{url}" rel="nofollow noopener noreferrer">{url}</a>'

    return _URL.sub(link, escaped)


def text_html(text: str, *, masked: bool) -> Markup:
    """A text part as HTML: escaped, links made links (the template puts it in <pre>)."""
    if masked:
        text = mask_addresses(text)
    return Markup(_linkify(html.escape(text, quote=True)))


def marked_html(text: str, *, masked: bool = False) -> Markup:
    """Search text with its marks as <mark>, everything else escaped; marks kept balanced."""
    if masked:
        text = mask_addresses(text)
    out: list[str] = []
    open_mark = False
    for piece in re.split(f"([{MARK_START}{MARK_END}])", text):
        if piece == MARK_START:
            if not open_mark:
                out.append("<mark>")
                open_mark = True
        elif piece == MARK_END:
            if open_mark:
                out.append("</mark>")
                open_mark = False
        else:
            out.append(html.escape(piece, quote=True))
    if open_mark:
        out.append("</mark>")
    return Markup("".join(out))


def show_parts(parts: list[Part], *, masked: bool) -> list[Shown]:
    shown: list[Shown] = []
    for part in parts:
        if part.kind is Kind.TEXT:
            shown.append(Shown(part.number, part.kind, text_html(part.text, masked=masked)))
        elif part.kind is Kind.HTML:
            clean = sanitize_html(part.text)
            shown.append(
                Shown(part.number, part.kind, Markup(mask_addresses(clean) if masked else clean))
            )
        else:
            shown.append(
                Shown(
                    part.number,
                    part.kind,
                    Markup(""),
                    filename=part.filename or f"part-{part.number + 1}",
                    content_type=part.content_type,
                    size=part.size,
                )
            )
    return shown
