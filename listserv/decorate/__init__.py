# SPDX-License-Identifier: Apache-2.0
"""Decoration of an accepted list post: footer, list headers, subject prefix, DMARC From.

`decorate_post` (post.py) builds the one shared copy per post through the
ordered `DECORATORS`; `personalize` (personalize.py) adds each member's own
List-Unsubscribe headers to it by a byte splice cheap enough to run once per
member; `list_headers` (identity.py) is the one builder of the List-* headers
every mail of a list carries.

Input: the raw bytes of an accepted post (untrusted: any bytes at all,
including broken MIME, bogus charsets, CRLF or LF line endings), a
`ListIdentity` (trusted site configuration, validated on construction) and
the rendered footer text and HTML (trusted templates). Output: bytes of a
complete message whose line endings follow the input's first line ending.

How: the stdlib `email` generator re-folds headers, renames boundaries and
re-encodes bodies when it re-serialises a parsed tree, so nothing here
re-serialises the poster's message. The raw bytes are split into header
fields and MIME parts by position (entities.py: lossless, the pieces
concatenate back to the input), and new bytes are spliced in. Only the text
parts that receive the footer are decoded and re-encoded (encoding.py,
footer.py); every other byte is carried over as it was. Pure: no I/O, no
database, no asyncio.
"""

from listserv.decorate.identity import LIST_HEADERS, ListIdentity, ListMail, list_headers
from listserv.decorate.personalize import MEMBER_LINK, personalize
from listserv.decorate.post import DECORATORS, decorate_post

__all__ = [
    "DECORATORS",
    "LIST_HEADERS",
    "MEMBER_LINK",
    "ListIdentity",
    "ListMail",
    "decorate_post",
    "list_headers",
    "personalize",
]
