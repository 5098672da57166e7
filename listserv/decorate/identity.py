# SPDX-License-Identifier: Apache-2.0
"""The list as decoration sees it, and the one builder of its List-* headers.

`ListIdentity` is trusted configuration checked once on construction.
`list_headers` is the only place the RFC 2369/2919 headers are written:
posts, digests and service notices each take the subset they carry, so a
List-Id is the same, quoted the same, in every mail a list sends.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from listserv.decorate.phrases import display_phrase

_MITIGATIONS = frozenset({"munge", "wrap", "none"})


_SENDER_HEADERS = frozenset({"reply-to", "cc"})


@dataclass(frozen=True)
class ListIdentity:
    """The list as decoration sees it; trusted configuration, checked once here.

    Every value ends up in generated headers, so control characters are refused at
    construction instead of being escaped on every post.
    """

    name: str
    display_name: str
    domain: str
    subject_prefix: str
    dmarc_mitigation: str
    original_sender_header: str
    archive_url: str
    help_url: str | None = None

    def __post_init__(self) -> None:
        if self.dmarc_mitigation not in _MITIGATIONS:
            raise ValueError(f"dmarc_mitigation must be one of {sorted(_MITIGATIONS)}")
        if self.original_sender_header not in _SENDER_HEADERS:
            raise ValueError(f"original_sender_header must be one of {sorted(_SENDER_HEADERS)}")
        if not self.name or not self.domain:
            raise ValueError("list name and domain are required")
        for attr in ("name", "display_name", "domain", "subject_prefix", "archive_url"):
            if any(ord(c) < 32 or ord(c) == 127 for c in getattr(self, attr)):
                raise ValueError(f"{attr} contains a control character")
        if self.help_url is not None and any(ord(c) < 33 for c in self.help_url):
            raise ValueError("help_url contains whitespace or a control character")
        for attr in ("name", "domain"):
            value = getattr(self, attr)
            if not value.isascii() or any(c in value for c in ' <>@,;:"\\()[]'):
                raise ValueError(f"{attr} must be a plain ASCII address part")

    def _address(self, suffix: str) -> str:
        return f"{self.name.lower()}{suffix}@{self.domain.lower()}"

    @property
    def posting_address(self) -> str:
        return self._address("")

    @property
    def request_address(self) -> str:
        return self._address("-request")

    @property
    def owner_address(self) -> str:
        return self._address("-owner")

    @property
    def bounces_address(self) -> str:
        return self._address("-bounces")

    @property
    def leave_address(self) -> str:
        return self._address("-leave")

    @property
    def join_address(self) -> str:
        return self._address("-join")

    @property
    def list_id(self) -> str:
        """RFC 2919 identifier in angle brackets: ``<sm-cop.lists.example.gov>``."""
        return f"<{self.name.lower()}.{self.domain.lower()}>"

    @property
    def list_id_header(self) -> str:
        """The List-Id value with its phrase: ``SM-COP <sm-cop.lists.example.gov>``."""
        phrase = display_phrase(self.display_name)
        return f"{phrase} {self.list_id}" if phrase else self.list_id


class ListMail(enum.StrEnum):
    """The kinds of mail a list sends, each with its own set of list headers."""

    POST = "post"  # a member's post (personal List-Unsubscribe added per copy)
    DIGEST = "digest"
    NOTICE = "notice"  # confirmations, welcomes, probes, replies to commands


#: The list headers each kind carries, in order. A post's List-Post comes last, so
#: personalize() finds the list's own address just above the end of the header block.
LIST_HEADERS: dict[ListMail, tuple[str, ...]] = {
    ListMail.POST: (
        "Sender",
        "Precedence",
        "X-Loop",
        "List-Id",
        "List-Help",
        "List-Owner",
        "List-Subscribe",
        "List-Archive",
        "List-Post",
    ),
    ListMail.DIGEST: (  # List-Unsubscribe added per copy, as for posts
        "List-Id",
        "List-Post",
        "List-Archive",
        "List-Owner",
        "Precedence",
        "X-Loop",
    ),
    ListMail.NOTICE: ("List-Id", "X-Loop"),
}


def _values(lst: ListIdentity) -> dict[str, str]:
    help_value = f"<mailto:{lst.request_address}?subject=help>"
    if lst.help_url:
        help_value += f", <{lst.help_url}>"
    return {
        "Sender": lst.bounces_address,
        "Precedence": "list",
        "X-Loop": lst.posting_address,
        "List-Id": lst.list_id_header,
        "List-Help": help_value,
        "List-Owner": f"<mailto:{lst.owner_address}>",
        "List-Subscribe": f"<mailto:{lst.join_address}>",
        "List-Archive": f"<{lst.archive_url}>",
        "List-Post": f"<mailto:{lst.posting_address}>",
    }


def list_headers(lst: ListIdentity, kind: ListMail = ListMail.POST) -> list[tuple[str, str]]:
    """(name, value) of the list headers a kind of mail carries (RFC 2369, 2919)."""
    values = _values(lst)
    return [(name, values[name]) for name in LIST_HEADERS[kind]]


def list_header_lines(lst: ListIdentity, eol: bytes, kind: ListMail = ListMail.POST) -> list[bytes]:
    """The same as header lines ending in `eol`, for a message built as bytes."""
    return [f"{name}: {value}".encode() + eol for name, value in list_headers(lst, kind)]
