# SPDX-License-Identifier: Apache-2.0
"""One builder of the List-* headers: posts, digests and notices name a list the same way."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from listserv import notices
from listserv.context import Context
from listserv.decorate import LIST_HEADERS, ListMail, decorate_post, list_headers
from listserv.digests import build_digest
from listserv.lists import get_list, list_identity
from listserv.models import MailingList, Post, PostStatus

POST = (
    b"From: Jane Doe <jane.doe@agency.gov>\r\n"
    b"To: sm-cop@lists.example.gov\r\n"
    b"Subject: Monthly call\r\n"
    b"Message-ID: <call@agency.gov>\r\n"
    b"\r\n"
    b"Agenda attached.\r\n"
)


def _list_id(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    values = msg.get_all("List-Id") or []
    assert len(values) == 1, values
    return str(values[0])


@pytest.fixture
def tricky(ctx_factory: Callable[..., Context]) -> tuple[Context, MailingList]:
    ctx = ctx_factory()
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    mlist.display_name = 'Social Media, "Community" of Practice'
    return ctx, mlist


def test_a_display_name_with_a_comma_and_quotes_is_quoted_everywhere(
    tricky: tuple[Context, MailingList],
) -> None:
    ctx, mlist = tricky
    identity = list_identity(mlist, ctx.settings.web.base_url)
    expected = r'"Social Media, \"Community\" of Practice" <sm-cop.lists.example.gov>'
    assert identity.list_id_header == expected

    post = decorate_post(POST, identity, "FOIA notice.", "")
    notice = notices.compose(ctx, "welcome.txt.j2", "jane.doe@agency.gov", mlist=mlist,
                             member_name="Jane Doe")  # fmt: skip
    archived = Post(
        list_id=mlist.id,
        message_id="<call@agency.gov>",
        sender="jane.doe@agency.gov",
        subject="Monthly call",
        raw=POST,
        status=PostStatus.ACCEPTED,
        received_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    digest = build_digest(ctx, mlist, [archived])
    assert _list_id(post) == _list_id(notice) == _list_id(digest) == expected


def test_a_non_ascii_name_is_encoded_not_sent_raw(tricky: tuple[Context, MailingList]) -> None:
    ctx, mlist = tricky
    mlist.display_name = "Comunicación Social"
    raw = notices.compose(ctx, "welcome.txt.j2", "jane.doe@agency.gov", mlist=mlist,
                          member_name="Jane Doe")  # fmt: skip
    header = raw.split(b"\r\n\r\n", 1)[0]
    assert header.isascii()
    value = _list_id(raw)
    assert value.startswith("=?utf-8?") and value.endswith("<sm-cop.lists.example.gov>")


def test_each_kind_of_mail_carries_its_own_set_in_order() -> None:
    assert LIST_HEADERS[ListMail.POST][-1] == "List-Post"  # personalize() reads it last
    # Posts and digests get each member's own List-Unsubscribe per copy, never a shared one.
    assert "List-Unsubscribe" not in LIST_HEADERS[ListMail.DIGEST]
    assert "List-Unsubscribe" not in LIST_HEADERS[ListMail.POST]
    assert set(LIST_HEADERS[ListMail.NOTICE]) == {"List-Id", "X-Loop"}


def test_the_builder_gives_the_addresses_of_the_list(
    tricky: tuple[Context, MailingList],
) -> None:
    ctx, mlist = tricky
    values = dict(list_headers(list_identity(mlist, ctx.settings.web.base_url), ListMail.DIGEST))
    assert values["List-Post"] == "<mailto:sm-cop@lists.example.gov>"
    assert values["List-Owner"] == "<mailto:sm-cop-owner@lists.example.gov>"
    assert values["List-Archive"].startswith("<http")
