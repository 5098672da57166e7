"""Actors for tests that write the roster directly, below the acts."""

from __future__ import annotations

from listserv.actors import Actor, Auth
from listserv.models import Channel


def as_actor(address: str = "test", channel: str = "cli", auth: str = "") -> Actor:
    """An actor from the words the audit log stores (address, channel, auth)."""
    return Actor(address, Channel(channel), Auth(auth), site_admin=True)
