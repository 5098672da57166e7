# SPDX-License-Identifier: Apache-2.0
"""Pre-approved posts (`Approved: password`): accepted, and the password kept nowhere."""

from __future__ import annotations

from sqlalchemy import select

from listserv.app import Service
from listserv.models import AuditEvent, InboundMessage, OutboxJob, Post, PostStatus
from listserv.passwords import hash_password
from tests.conftest import make_message, read_maildir, send, settle
from tests.posting_helpers import JANE, OWNER, add_member, set_list

PASSWORD = "correct horse battery staple"


def stored_bytes(service: Service) -> list[bytes]:
    with service.factory() as session:
        return [
            *session.scalars(select(InboundMessage.raw)),
            *session.scalars(select(Post.raw)),
            *session.scalars(select(OutboxJob.raw)),
        ]


async def test_valid_password_approves_a_post_on_a_moderated_list(service: Service) -> None:
    with service.factory() as session, session.begin():
        from listserv.models import Member

        owner = session.scalar(select(Member).where(Member.address_key == OWNER))
        assert owner is not None
        owner.password_hash = hash_password(PASSWORD)
    add_member(service, JANE, "Jane Doe")
    set_list(service, moderated=True)
    msg = make_message(
        sender="Pat <pat@agency.gov>",
        subject="Announcement",
        body="Meeting moved to Thursday.\n",
        Approved=PASSWORD,
    )
    await send(service, msg)
    await settle(service)
    [(_, copy)] = [
        (p, m)
        for p, m in read_maildir(service.settings.delivery.maildir)
        if m["Delivered-To"] == JANE
    ]
    assert "Meeting moved" in copy.get_body(("plain",)).get_content()
    with service.factory() as session:
        post = session.scalar(select(Post))
        assert post is not None and post.status == PostStatus.ACCEPTED
        assert f"pre-approved by {OWNER}" in post.reason
    for raw in stored_bytes(service):
        assert PASSWORD.encode() not in raw
    for path, _ in read_maildir(service.settings.delivery.maildir):
        assert PASSWORD.encode() not in path.read_bytes()


async def test_wrong_password_is_audited_removed_and_the_post_held(service: Service) -> None:
    set_list(service, moderated=True)
    add_member(service, JANE, "Jane Doe")
    msg = make_message(sender=JANE, subject="Hi", body="Hello.\n", Approved="guess-guess-guess")
    await send(service, msg)
    await settle(service)
    with service.factory() as session:
        post = session.scalar(select(Post))
        assert post is not None and post.status == PostStatus.HELD
        refused = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "post-approval-refused")
        ).all()
        assert len(refused) == 1 and refused[0].outcome == "bad-password"
    for raw in stored_bytes(service):
        assert b"guess-guess-guess" not in raw
