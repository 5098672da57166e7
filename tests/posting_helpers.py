# SPDX-License-Identifier: Apache-2.0
"""Helpers for the posting tests: roster set-up, list settings, and what arrived."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from sqlalchemy import select

from listserv import roster
from listserv.app import Service
from listserv.lists import get_list
from listserv.models import Member, Post, Role
from tests.actors import as_actor
from tests.conftest import read_maildir, send, settle

LIST = "sm-cop"
POSTING = "sm-cop@lists.example.gov"
OWNER = "owner@digital.gov"  # the shipped configuration's owner
JANE = "jane.doe@agency.gov"
BOB = "bob.smith@agency.gov"
CAROL = "carol@army.mil"


def add_member(
    service: Service, address: str, name: str = "", role: str = Role.MEMBER, **changes: Any
) -> int:
    """A member written through the roster (history and audit), with optional changes."""
    with service.factory() as session, session.begin():
        mlist = get_list(session, LIST)
        assert mlist is not None
        member = roster.add_member(
            session, mlist, address, name=name, role=role, actor=as_actor("test")
        )
        for key, value in changes.items():
            setattr(member, key, value)
        return member.id


def set_list(service: Service, **values: Any) -> None:
    with service.factory() as session, session.begin():
        mlist = get_list(session, LIST)
        assert mlist is not None
        for key, value in values.items():
            setattr(mlist, key, value)


def post_for(service: Service, message_id: str) -> Post:
    """The last stored post with this Message-ID (detached)."""
    with service.factory() as session:
        post = session.scalars(
            select(Post).where(Post.message_id == message_id).order_by(Post.id.desc())
        ).first()
        assert post is not None, f"no post stored for {message_id}"
        session.expunge(post)
        return post


def all_posts(service: Service) -> list[Post]:
    with service.factory() as session:
        posts = list(session.scalars(select(Post).order_by(Post.id)))
        for post in posts:
            session.expunge(post)
        return posts


def delivered(service: Service) -> list[EmailMessage]:
    return [m for _, m in read_maildir(service.settings.delivery.maildir)]


def copies_of(service: Service, message_id: str) -> dict[str, list[EmailMessage]]:
    """List copies of a post (they keep its Message-ID), by envelope recipient."""
    found: dict[str, list[EmailMessage]] = {}
    for msg in delivered(service):
        if msg["Message-ID"] == message_id:
            found.setdefault(str(msg["Delivered-To"]), []).append(msg)
    return found


def notices_to(service: Service, address: str, message_id: str = "") -> list[EmailMessage]:
    """Service mail (not list copies) delivered to `address`."""
    return [
        m
        for m in delivered(service)
        if m["Delivered-To"] == address and (not message_id or m["Message-ID"] != message_id)
    ]


async def post_and_settle(service: Service, msg: EmailMessage | bytes, **kwargs: Any) -> None:
    assert await send(service, msg, **kwargs) == {}
    await settle(service)


def member_row(service: Service, address: str, role: str = Role.MEMBER) -> Member | None:
    with service.factory() as session:
        mlist = get_list(session, LIST)
        assert mlist is not None
        member = roster.find_member(session, mlist, address, role)
        if member is not None:
            session.expunge(member)
        return member
