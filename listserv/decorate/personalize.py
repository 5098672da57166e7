# SPDX-License-Identifier: Apache-2.0
"""One member's copy: their own List-Unsubscribe headers and footer link, spliced in.

A byte splice at the end of the header block, no parsing, a few microseconds
a copy; where the block ends and the list's leave address are found once per
shared copy (a pure function, cached for the one copy fan-out is sending).

The footer of a personalized list says :data:`MEMBER_LINK` where each member's
own one-click link goes; each copy gets its member's link in its place. The
marker is ASCII letters, digits and hyphens on a line of its own in the footer
templates, so no transfer encoding the footer is written in (7bit, 8bit,
quoted-printable, ISO-2022, UTF-7) changes or splits it; a base64 text part that
takes it is re-encoded as quoted-printable (`encoding.encode_cte`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

_LIST_POST_MARK = b"\nList-Post: <mailto:"


_ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"

#: Where a member's own one-click link goes in a shared copy's footer.
MEMBER_LINK = "listserv-member-one-click-link-9f3c1e"
_MEMBER_LINK = MEMBER_LINK.encode("ascii")


def _header_bytes(text: str) -> bytes:
    if "\r" in text or "\n" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return text.encode("utf-8", "replace")


class _SplicePoint(NamedTuple):
    shared: bytes
    head: memoryview  # shared (plus a line ending if it had no header/body separator)
    cut: int  # where the header block's last line ends
    eol: bytes
    leave: bytes | None  # the -leave address derived from our List-Post line
    links: bool  # the body holds MEMBER_LINK


#: Fan-out calls personalize() for one shared copy many times in a row: where its
#: header block ends and its leave address are found once. A pure function of the
#: bytes, so caching the last one is safe (bytes cache their own hash).
@functools.lru_cache(maxsize=1)
def _splice_point(shared: bytes) -> _SplicePoint:
    nl = shared.find(b"\n")
    if nl > 0 and shared[nl - 1] == 13:
        eol = b"\r\n"
        end = shared.find(b"\r\n\r\n")
    else:
        eol = b"\n"
        end = shared.find(b"\n\n")
    if end < 0:  # not from decorate_post: treat it all as headers
        head = shared if not shared or shared.endswith(b"\n") else shared + eol
        cut = len(head)
    else:
        head = shared
        cut = end + len(eol)
    leave = None
    mark = shared.rfind(_LIST_POST_MARK, 0, cut)
    if mark >= 0:
        start = mark + len(_LIST_POST_MARK)
        stop = shared.find(b">", start, cut)
        local, at, domain = shared[start:stop].rpartition(b"@")
        if at and stop > 0:
            leave = local + b"-leave@" + domain
    links = shared.find(_MEMBER_LINK, cut) >= 0
    return _SplicePoint(shared, memoryview(head), cut, eol, leave, links)


def personalize(
    shared: bytes,
    unsubscribe_url: str,
    extra_headers: Sequence[tuple[str, str]] = (),
    *,
    leave_address: str | None = None,
) -> bytes:
    """One member's copy: List-Unsubscribe (https and mailto), List-Unsubscribe-Post,
    and ``unsubscribe_url`` wherever the footer says :data:`MEMBER_LINK`.

    A byte splice at the end of the header block of :func:`decorate_post`'s output, no
    parsing: the header block ends at the first empty line. The mailto address is
    ``<name>-leave@<domain>``, derived from our List-Post line unless ``leave_address``
    is given. ``extra_headers`` follow (CR/LF in them become spaces). A few
    microseconds per call, mostly the final copy of the message.
    """
    point = _splice_point(shared)
    eol = point.eol
    leave = _header_bytes(leave_address) if leave_address is not None else point.leave
    value = b"<" + _header_bytes(unsubscribe_url) + b">"
    if leave is not None:
        # "List-Unsubscribe: " + value + ", <mailto:" + leave + ">" within 78 columns?
        fold = b" " if len(value) + len(leave) < 50 else eol + b" "
        value += b"," + fold + b"<mailto:" + leave + b">"
    added = b"List-Unsubscribe: " + value + eol + _ONE_CLICK + eol
    for name, text in extra_headers:
        clean_name = bytes(c for c in name.encode("ascii", "ignore") if 32 < c < 127 and c != 58)
        added += clean_name + b": " + _header_bytes(text) + eol
    head, cut = point.head, point.cut
    if point.links:
        body = bytes(head[cut:]).replace(_MEMBER_LINK, _header_bytes(unsubscribe_url))
        return b"".join((head[:cut], added, body))
    return b"".join((head[:cut], added, head[cut:]))
