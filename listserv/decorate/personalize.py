# SPDX-License-Identifier: Apache-2.0
"""One member's copy: their own List-Unsubscribe headers spliced into the shared copy.

A byte splice at the end of the header block, no parsing, a few microseconds
a copy; where the block ends and the list's leave address are found once per
shared copy (a pure function, cached for the one copy fan-out is sending).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

_LIST_POST_MARK = b"\nList-Post: <mailto:"


_ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"


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
    return _SplicePoint(shared, memoryview(head), cut, eol, leave)


def personalize(
    shared: bytes,
    unsubscribe_url: str,
    extra_headers: Sequence[tuple[str, str]] = (),
    *,
    leave_address: str | None = None,
) -> bytes:
    """One member's copy: List-Unsubscribe (https and mailto) and List-Unsubscribe-Post.

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
    return b"".join((head[:cut], added, head[cut:]))
