# SPDX-License-Identifier: Apache-2.0
"""Who acts: the address, the door they came through, and how they proved it.

Every change of state is done by an `Actor`, and the audit record names all
three (NIST AU-3: who, where from, how authenticated). Channels build the
actor once from what they verified — the host's shell account, an owner's
confirmed reply or `Approved:` password, a web session's sign-in, an API
token — and hand it to the acts, which decide what it may do.
"""

from __future__ import annotations

import enum
import getpass
from dataclasses import dataclass

from listserv.models import Channel, Role


class Auth(enum.StrEnum):
    """How the actor proved who they are (stored in `audit_events.auth`)."""

    NONE = ""  # nothing beyond the address a message came from
    HOST = "host"  # a shell account on the list host
    FROM_ADDRESS = "from-address"  # an answer that goes only to that address is the proof
    CONFIRMED_REPLY = "confirmed-reply"  # held a token mailed to the address
    PASSWORD = "password"  # an owner's Approved: password
    RULES = "rules"  # the posting rules decided
    ONE_CLICK = "one-click-token"  # RFC 8058: the member's own signed link
    LINK = "link"  # a mailed sign-in link (members)
    LINK_TOTP = "link+totp"
    LINK_PASSKEY = "link+passkey"
    LINK_RECOVERY = "link+recovery"
    TOKEN = "token"  # an API token


@dataclass(frozen=True)
class Scope:
    """What an API token may touch: its role, and the lists (None: every list)."""

    role: Role | None  # None: read only
    lists: frozenset[str] | None = None

    def covers(self, list_name: str) -> bool:
        return self.lists is None or list_name in self.lists


@dataclass(frozen=True)
class Actor:
    """One person or process acting through one channel.

    `site_admin` may act on every list (the host operator, site admins named in
    the configuration, the service itself). `scope` limits an API token; without
    it, what the address may do on a list follows from its roster rows.
    """

    address: str
    channel: Channel
    auth: Auth = Auth.NONE
    site_admin: bool = False
    scope: Scope | None = None


def host_actor() -> Actor:
    """The operator at the host's shell: every list, audited as `user@host`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "operator"
    return Actor(f"{user}@host", Channel.CLI, Auth.HOST, site_admin=True)


def system_actor(name: str = "system") -> Actor:
    """The service itself (bounce processing, expiries, seeding from the configuration)."""
    return Actor(name, Channel.SYSTEM, Auth.NONE, site_admin=True)


def web_actor(address: str = "", auth: Auth = Auth.NONE) -> Actor:
    """A browser: anonymous until a page's token or a sign-in proves an address."""
    return Actor(address, Channel.WEB, auth)


def email_actor(address: str, auth: Auth = Auth.NONE) -> Actor:
    """The sender of a message, with what the message proved."""
    return Actor(address, Channel.EMAIL, auth)
