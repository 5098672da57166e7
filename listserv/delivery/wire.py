# SPDX-License-Identifier: Apache-2.0
"""A message as SMTP carries it: CRLF line ends, ending in CRLF, dots stuffed in DATA.

Fan-out makes a post's shared copy canonical once and marks it `CanonicalBytes`, so
the relay client never scans the bytes of a copy again.
"""

from __future__ import annotations

import re

_LINE_END = re.compile(rb"\r\n|\r|\n")


class CanonicalBytes(bytes):
    """A message already in SMTP's canonical form: CRLF line ends, ending in CRLF.

    Checking that costs three scans of the message; fan-out makes the shared copy
    canonical once and marks each spliced copy, so a copy is not scanned again.
    """

    __slots__ = ()


def canonical(message: bytes) -> bytes:
    """The message with CRLF line ends (the form SMTP carries), ending in CRLF."""
    if type(message) is CanonicalBytes:
        return message
    if b"\r" not in message:
        message = message.replace(b"\n", b"\r\n")
    else:
        crlf = message.count(b"\r\n")
        if crlf != message.count(b"\n") or crlf != message.count(b"\r"):
            message = _LINE_END.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message


def wire_format(message: bytes) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, ending in CRLF.CRLF."""
    message = canonical(message)
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\n.", b"\n..") + b".\r\n"
