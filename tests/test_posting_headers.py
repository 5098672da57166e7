# SPDX-License-Identifier: Apache-2.0
"""A post sent without Message-ID or Date goes out with both, and the archive keeps the original."""

from __future__ import annotations

from sqlalchemy import select

from listserv.app import Service
from listserv.models import Post, PostStatus
from tests.conftest import read_maildir, send, settle
from tests.posting_helpers import JANE, add_member


async def test_missing_message_id_and_date_are_added_to_copies(service: Service) -> None:
    add_member(service, JANE, "Jane Doe")
    raw = (
        b"From: Jane Doe <jane.doe@agency.gov>\r\nTo: sm-cop@lists.example.gov\r\n"
        b"Subject: bare\r\n\r\nNo Message-ID, no Date.\r\n"
    )
    await send(service, raw, mail_from=JANE, rcpt_to="sm-cop@lists.example.gov")
    await settle(service)
    [copy] = [
        m for _, m in read_maildir(service.settings.delivery.maildir) if m["Delivered-To"] == JANE
    ]
    assert copy["Date"] and copy["Message-ID"].endswith("@lists.example.gov>")
    with service.factory() as session:
        post = session.scalar(select(Post))
        assert post is not None and post.status == PostStatus.ACCEPTED
        assert post.raw == raw  # the archive keeps what was sent
        assert post.message_id == copy["Message-ID"]
