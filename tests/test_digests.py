# SPDX-License-Identifier: Apache-2.0
"""Daily digests for members on DIGEST: one MIME digest with each post unchanged."""

from __future__ import annotations

from datetime import timedelta

from listserv.app import Service
from listserv.context import Context
from listserv.digests import send_digests
from listserv.lists import get_list
from listserv.models import DeliveryMode, utcnow
from tests.conftest import mail_to, make_message, read_maildir, send, settle
from tests.posting_helpers import JANE, add_member

BOB = "bob.smith@agency.gov"


async def test_digest_members_get_one_digest_a_day(service: Service) -> None:
    add_member(service, JANE, "Jane Doe")
    add_member(service, BOB, "Bob Smith", delivery_mode=DeliveryMode.DIGEST)
    for subject in ("First", "Second"):
        await send(service, make_message(subject=subject, body=f"{subject} post.\n"))
    await settle(service)
    delivered = [m["Delivered-To"] for _, m in read_maildir(service.settings.delivery.maildir)]
    assert delivered.count(JANE) == 2 and BOB not in delivered

    # The last digest went out a day ago; the periodic job finds the next one due.
    with service.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        mlist.last_digest_at = utcnow() - timedelta(days=1, minutes=1)
    for expected in (1, 0):  # once a day: the second run finds nothing due
        with service.factory() as session, session.begin():
            ctx = Context(session=session, settings=service.settings, templates=service.templates)
            assert send_digests(ctx) == expected
    service.outbox_ready.set()
    [digest] = await mail_to(service, BOB)
    assert "SM-COP digest" in digest["Subject"] and digest["List-Id"]
    parts = list(digest.iter_parts())
    contents = parts[0].get_content()
    assert "First" in contents and "Second" in contents and "Freedom of Information" in contents
    assert parts[1].get_content_type() == "multipart/digest"
    posts = [p.get_content() for p in parts[1].iter_parts()]
    assert [p["Subject"] for p in posts] == ["First", "Second"]
    assert posts[0].get_content().strip() == "First post."
