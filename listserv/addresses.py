# SPDX-License-Identifier: Apache-2.0
"""List addresses: which list and which role a recipient address names.

Input is an envelope recipient (`sm-cop-join@lists.example.gov`); output is a
`Recipient` (list name, `Destination`, and the `+extension` if any: a VERP
address or a confirmation token). The table of suffixes is data, as in
Mailman's SUBADDRESS_NAMES, so a reader sees every address in one place.
Matching folds case because MTAs and people do not preserve it.

>>> parse_recipient("SM-COP-Join@Lists.Example.gov", ("lists.example.gov",), "listserv")
Recipient(list_name='sm-cop', destination=<Destination.JOIN: 'join'>, extension='')
>>> verp_encode("sm-cop", "jane@agency.gov", "lists.example.gov")
'sm-cop-bounces+jane=agency.gov@lists.example.gov'
>>> verp_decode("jane=agency.gov")
'jane@agency.gov'
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Destination(enum.StrEnum):
    POST = "post"
    REQUEST = "request"
    JOIN = "join"
    LEAVE = "leave"
    OWNER = "owner"
    BOUNCES = "bounces"
    CONFIRM = "confirm"
    SITE = "site"


#: Suffix after the list name → what mail to that address means.
SUFFIXES: dict[str, Destination] = {
    "": Destination.POST,
    "-request": Destination.REQUEST,
    "-subscribe-request": Destination.JOIN,
    "-subscribe": Destination.JOIN,
    "-join": Destination.JOIN,
    "-unsubscribe-request": Destination.LEAVE,
    "-signoff-request": Destination.LEAVE,
    "-unsubscribe": Destination.LEAVE,
    "-leave": Destination.LEAVE,
    "-owner": Destination.OWNER,
    "-bounces": Destination.BOUNCES,
    "-confirm": Destination.CONFIRM,
}

#: A list name may not end with these, or its addresses would be ambiguous.
RESERVED_SUFFIXES = tuple(s for s in SUFFIXES if s)

#: What a list name may look like (config.py enforces the same on creation).
LIST_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")

#: Suffixes that take a `+extension` (VERP address, token); others refuse one.
EXTENSION_SUFFIXES = frozenset({"-bounces", "-confirm"})


@dataclass(frozen=True)
class Recipient:
    list_name: str  # '' for the site command address
    destination: Destination
    extension: str = ""


def split_address(address: str) -> tuple[str, str]:
    """Local part and lower-cased domain of a bare addr-spec ('' domain if none)."""
    address = address.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    if not at:
        return address, ""
    return local, domain.lower().rstrip(".")


def parse_recipient(
    address: str, domains: tuple[str, ...], site_local_part: str
) -> Recipient | None:
    """The list and role an address names at one of our domains, or None.

    None means "not ours": intake refuses it with 550 5.1.1. Whether the named
    list exists is checked by the caller against the database.
    """
    local, domain = split_address(address)
    if not local or domain not in domains or any(c in local for c in "\r\n\0 "):
        return None
    base, plus, extension = local.partition("+")
    base = base.lower()
    if base == site_local_part:
        return None if plus else Recipient("", Destination.SITE)
    # Longest suffix first, so "-subscribe-request" wins over "-request".
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if suffix and not base.endswith(suffix):
            continue
        name = base[: len(base) - len(suffix)] if suffix else base
        if not LIST_NAME.fullmatch(name):
            continue
        if plus and suffix not in EXTENSION_SUFFIXES:
            return None
        if suffix == "-confirm" and not extension:
            return None
        return Recipient(name, SUFFIXES[suffix], extension)
    return None


def list_address(list_name: str, domain: str, suffix: str = "") -> str:
    return f"{list_name}{suffix}@{domain}"


def verp_encode(list_name: str, member_address: str, domain: str) -> str:
    """Bounces address that names the member, so a bounce needs no parsing."""
    local, member_domain = split_address(member_address)
    return f"{list_name}-bounces+{local}={member_domain}@{domain}"


def verp_decode(extension: str) -> str | None:
    """The member address inside a VERP extension, None if it holds none."""
    local, eq, domain = extension.rpartition("=")
    if not eq or not local or not domain or "." not in domain:
        return None
    return f"{local}@{domain.lower()}"
