# SPDX-License-Identifier: Apache-2.0
"""A way out in every mail: each member's own link in posts' footers, in digests and in
the welcome; the list page's leave form; digests on demand."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import AsyncIterator
from email.message import EmailMessage

import httpx
import pytest

from listserv.acts import digests as digest_acts
from listserv.acts.members import add_member as add_act
from listserv.app import Service
from listserv.config import Settings
from listserv.context import Context
from listserv.decorate import MEMBER_LINK, ListIdentity, decorate_post, personalize
from listserv.lists import get_list
from listserv.models import DeliveryMode
from tests.actors import as_actor
from tests.admin_helpers import run_cli, write_config
from tests.conftest import mail_to, make_message, read_maildir, send, settle
from tests.posting_helpers import BOB, JANE, add_member, member_row
from tests.web_helpers import parse_page, start_web_service

LINK = re.compile(r"(https?://[^\s<>\"]+/unsubscribe/sm-cop/[0-9]+\.[A-Za-z0-9_-]+)")


@pytest.fixture
async def web_service(settings: Settings) -> AsyncIterator[Service]:
    async with start_web_service(settings) as service:
        yield service


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def one_click_header(message: EmailMessage) -> str:
    match = LINK.search(str(message["List-Unsubscribe"]))
    assert match is not None, message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return match.group(1)


def origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


async def leave_with_the_button(url: str) -> httpx.Response:
    """What a member does: open the link (a GET that changes nothing), press the button."""
    async with httpx.AsyncClient() as client:
        page = await client.get(url)
        assert page.status_code == 200 and "Leave SM-COP" in page.text
        [form] = parse_page(page.text).forms
        action = httpx.URL(url).join(form["action"])
        return await client.post(action, data=form["fields"], headers={"Origin": origin(url)})


async def test_a_member_leaves_through_the_link_in_a_posts_text_footer(
    web_service: Service,
) -> None:
    add_member(web_service, JANE, "Jane Doe")
    add_member(web_service, BOB, "Bob Smith")
    html = make_message(subject="Both halves", body="Plain half.\n")
    html.add_alternative("<html><body><p>HTML half.</p></body></html>", subtype="html")
    await send(web_service, html, mail_from=BOB, rcpt_to="sm-cop@lists.example.gov")
    [copy] = await mail_to(web_service, JANE)
    [bob_copy] = await mail_to(web_service, BOB)
    text = text_of(copy)
    assert MEMBER_LINK not in copy.as_string()
    [link] = LINK.findall(text)
    assert link == one_click_header(copy)  # the footer and the header name the same page
    html_part = copy.get_body(("html",))
    assert html_part is not None and f'href="{link}"' in str(html_part.get_content())
    assert LINK.findall(text_of(bob_copy)) != [link]  # each member has their own
    left = await leave_with_the_button(link)
    assert left.status_code == 200 and "You have left SM-COP" in left.text
    assert member_row(web_service, JANE) is None
    assert member_row(web_service, BOB) is not None


IDENTITY = ListIdentity(
    name="sm-cop",
    display_name="SM-COP",
    domain="lists.example.gov",
    subject_prefix="[SM-COP]",
    dmarc_mitigation="munge",
    original_sender_header="reply-to",
    archive_url="https://lists.example.gov/lists/sm-cop",
)
FOOTER = f"Leave:\n{MEMBER_LINK}\n"


@pytest.mark.parametrize("cte", ["7bit", "quoted-printable", "base64"])
def test_every_transfer_encoding_carries_the_personal_link(cte: str) -> None:
    body = "Caf\u00e9 " * 40 + "\n" if cte != "7bit" else "Plain words.\n"
    msg = make_message(body=body)
    msg.set_content(body, cte=cte)
    shared = decorate_post(msg.as_bytes(), IDENTITY, FOOTER, "")
    url = "https://lists.example.gov/unsubscribe/sm-cop/12.AbC-d_e"
    copy = personalize(shared, url)
    parsed = email.message_from_bytes(copy, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    text = text_of(parsed)
    assert url in text and MEMBER_LINK not in text
    assert text.startswith(body.strip()[:20])


async def test_a_digest_reader_leaves_with_the_digests_one_click_header(
    web_service: Service,
) -> None:
    add_member(web_service, JANE, "Jane Doe", delivery_mode=DeliveryMode.DIGEST)
    add_member(web_service, BOB, "Bob Smith", delivery_mode=DeliveryMode.DIGEST)
    add_member(web_service, "carol@army.mil", "Carol")
    await send(web_service, make_message(subject="Weekly tips", sender="Carol <carol@army.mil>"))
    await settle(web_service)
    with web_service.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        ctx = Context(
            session=session, settings=web_service.settings, templates=web_service.templates
        )
        run = digest_acts.send_now(ctx, as_actor("owner@digital.gov"), mlist)
        assert (run.posts, run.recipients, run.queued) == (1, 2, True)
    web_service.outbox_ready.set()
    [digest] = await mail_to(web_service, JANE)
    [bob_digest] = await mail_to(web_service, BOB)
    link = one_click_header(digest)
    assert link != one_click_header(bob_digest)
    contents = str(next(iter(digest.iter_parts())).get_content())
    assert link in contents and "SET SM-COP MAIL" in contents and "NOMAIL" in contents
    async with httpx.AsyncClient() as client:  # what a mail client's one-click does
        response = await client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert member_row(web_service, JANE) is None
    assert member_row(web_service, BOB) is not None
    digests = [m for _, m in read_maildir(web_service.settings.delivery.maildir)]
    assert sum("digest" in str(m["Subject"]) for m in digests) == 2  # one per digest member


async def test_the_welcome_carries_the_members_own_link(web_service: Service) -> None:
    with web_service.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        ctx = Context(
            session=session, settings=web_service.settings, templates=web_service.templates
        )
        add_act(ctx, as_actor("owner@digital.gov"), mlist, JANE, name="Jane", welcome=True)
    web_service.outbox_ready.set()
    [welcome] = await mail_to(web_service, JANE)
    link = one_click_header(welcome)
    assert link in text_of(welcome) and "sm-cop-join@" in text_of(welcome)


async def test_the_leave_form_mails_a_member_and_answers_a_stranger_the_same(
    web_service: Service,
) -> None:
    add_member(web_service, JANE, "Jane Doe")
    base = web_service.settings.web.base_url
    async with httpx.AsyncClient(base_url=base, headers={"Origin": base}) as client:
        member = await client.post("/lists/sm-cop/leave", data={"leave_address": JANE})
        stranger = await client.post(
            "/lists/sm-cop/leave", data={"leave_address": "nobody@agency.gov"}
        )
        empty = await client.post("/lists/sm-cop/leave", data={"leave_address": ""})
    assert member.status_code == stranger.status_code == 200
    assert member.text.replace(JANE, "X") == stranger.text.replace("nobody@agency.gov", "X")
    assert empty.status_code == 400
    [confirm] = await mail_to(web_service, JANE)
    assert "Confirm leaving SM-COP" in str(confirm["Subject"])
    assert '"Leave SM-COP"' in text_of(confirm)
    await settle(web_service)
    delivered = [m["Delivered-To"] for _, m in read_maildir(web_service.settings.delivery.maildir)]
    assert "nobody@agency.gov" not in delivered
    assert member_row(web_service, JANE) is not None  # nothing changes until confirmed


def test_digests_send_dry_run_counts_and_changes_nothing(tmp_path, db_url: str) -> None:
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    assert run_cli(config, "members", "add", "sm-cop", JANE, "--no-welcome").code == 0
    assert run_cli(config, "members", "set", "sm-cop", JANE, "--delivery", "digest").code == 0
    dry = run_cli(config, "digests", "send", "sm-cop", "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    assert dry.json() == [
        {"list": "sm-cop", "posts": 0, "recipients": 1, "sent": False, "dry_run": True}
    ]
    real = run_cli(config, "digests", "send", "--json")
    assert real.code == 0 and all(not r["sent"] for r in real.json())  # no posts yet
    audit = run_cli(config, "audit", "--action", "digest-send", "--json").json()
    assert audit and audit[-1]["channel"] == "cli"
