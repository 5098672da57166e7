# SPDX-License-Identifier: Apache-2.0
"""Service mail: confirmations, welcomes, refusals and replies, into the outbox.

Input is a template name, a recipient and the template's variables; output is
an outbox job whose bytes are final. Every notice says `Auto-Submitted:
auto-replied` (RFC 3834) so well-behaved autoresponders do not answer it, and
goes out from the list's bounces address so its own bounces come back to us.
A notice that would be backscatter (`withheld`) is not queued but audited.
"""

from __future__ import annotations

import quopri
from datetime import timedelta
from email.header import Header
from email.utils import formatdate, make_msgid
from typing import Any

from sqlalchemy import select

from listserv import audit, outbox, roster
from listserv.context import Context
from listserv.decorate import ListMail, list_headers
from listserv.lists import eligibility_text, list_identity
from listserv.mailbox import undeliverable
from listserv.models import Channel, MailingList, Member, Role
from listserv.tokens import one_click_url, unsubscribe_token

#: Notices to someone who is a member when they read it: each carries that member's
#: own one-click link, in the text (`unsubscribe_url`) and in List-Unsubscribe.
MEMBER_NOTICES = frozenset(
    {"welcome.txt.j2", "bounce_disabled.txt.j2", "bounce_probe.txt.j2", "already_member.txt.j2"}
)


def member_unsubscribe_url(ctx: Context, mlist: MailingList, address: str) -> str | None:
    """The member's own one-click page, or None if the address is not a member."""
    member = roster.find_member(ctx.session, mlist, address, Role.MEMBER)
    if member is None:
        return None
    token = unsubscribe_token(
        ctx.settings.site.secret.get(), member.id, mlist.name, member.unsubscribe_nonce
    )
    return one_click_url(ctx.settings.web.base_url, mlist.name, token)


def list_view(ctx: Context, mlist: MailingList) -> dict[str, Any]:
    """What templates may say about a list."""
    base = ctx.settings.web.base_url
    return {
        "name": mlist.name,
        "display_name": mlist.display_name,
        "description": mlist.description,
        "posting_address": mlist.posting_address,
        "request_address": mlist.address("-request"),
        "join_address": mlist.address("-join"),
        "leave_address": mlist.address("-leave"),
        "owner_address": mlist.address("-owner"),
        "join_phrase": (mlist.join_phrases or ["subscribe"])[0],
        "leave_phrase": (mlist.leave_phrases or ["unsubscribe"])[0],
        "eligibility": eligibility_text(mlist),
        "url": f"{base}/lists/{mlist.name}",
        "site_address": ctx.settings.site.site_address,
    }


def _header_safe(text: str) -> str:
    """One line, whatever a template or a member's name held (no header injection)."""
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def compose(
    ctx: Context,
    template: str,
    to: str,
    *,
    mlist: MailingList | None = None,
    from_address: str | None = None,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    **variables: Any,
) -> bytes:
    """Render a mail template into final bytes."""
    site = ctx.settings.site
    context: dict[str, Any] = {
        "site": {"domain": site.domain, "address": site.site_address},
        "base_url": ctx.settings.web.base_url,
        "recipient": to,
        "list": list_view(ctx, mlist) if mlist is not None else None,
    }
    link = None
    if mlist is not None and template in MEMBER_NOTICES:
        link = member_unsubscribe_url(ctx, mlist, to)
    context["unsubscribe_url"] = link
    context.update(variables)
    text = ctx.templates.render_mail(template, **context)
    if from_address is None:
        from_address = mlist.address("-request") if mlist is not None else site.site_address
    display = f"{mlist.display_name} list" if mlist is not None else "List server"
    headers = [
        ("From", f"{_encode_phrase(display)} <{from_address}>"),
        ("To", _header_safe(to)),
        ("Subject", _encode_text(_header_safe(text.subject))),
        ("Date", formatdate(localtime=False)),
        ("Message-ID", make_msgid(domain=site.domain)),
    ]
    if reply_to:
        headers.append(("Reply-To", _header_safe(reply_to)))
    if in_reply_to and in_reply_to.startswith("<") and not any(c in in_reply_to for c in "\r\n"):
        headers += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
    headers += [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")]
    if mlist is not None:
        identity = list_identity(mlist, ctx.settings.web.base_url)
        headers += list_headers(identity, ListMail.NOTICE)
        if link is not None:
            headers += [
                ("List-Unsubscribe", f"<{link}>, <mailto:{identity.leave_address}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ]
    body = text.body if text.body.endswith("\n") else text.body + "\n"
    if body.isascii() and max(map(len, body.splitlines()), default=0) <= 998:
        # Plain 7-bit text when it can be, so a person reading the Maildir sees words.
        encoded, cte = body.replace("\n", "\r\n").encode("ascii"), "7bit"
    else:
        encoded = quopri.encodestring(body.encode("utf-8")).replace(b"\n", b"\r\n")
        cte = "quoted-printable"
    headers += [
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", cte),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("utf-8") + b"\r\n" + encoded


def _encode_text(value: str) -> str:
    """RFC 2047 for a non-ASCII unstructured header (Subject)."""
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(maxlinelen=76, linesep="\r\n")


def _encode_phrase(value: str) -> str:
    """A display name: quoted if it needs it, RFC 2047-encoded if non-ASCII."""
    value = _header_safe(value)
    if not value.isascii():
        return Header(value, "utf-8").encode()
    if any(c in value for c in '()<>[]:;@\\,."'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def withheld(ctx: Context, to: str, mlist: MailingList | None) -> str | None:
    """Why no service mail may go to `to` (backscatter), or None.

    An address that cannot be a real recipient never gets one. When the
    message being answered has trusted Authentication-Results, a sender we
    do not know gets one only if their domain passed SPF, DKIM or DMARC.
    """
    reason = undeliverable(to)
    if reason is not None:
        return reason
    proof = ctx.sender_proof
    if proof is None or not proof.concerns(to) or proof.vouches_for(to):
        return None
    key = roster.address_key(to)
    known = select(Member.id).where(Member.address_key == key)
    if mlist is not None:
        known = known.where(Member.list_id == mlist.id)
    if ctx.session.scalar(known.limit(1)) is not None:
        return None
    return "sender-not-authenticated"


def send_notice(
    ctx: Context,
    template: str,
    to: str,
    *,
    mlist: MailingList | None = None,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    **variables: Any,
) -> int | None:
    """Queue one service mail, its job's id; None (audited, nothing sent) when it would be
    backscatter."""
    reason = withheld(ctx, to, mlist)
    if reason is not None:
        audit.record(
            ctx.session,
            "notice-withheld",
            channel=Channel.SYSTEM,
            list_name=mlist.name if mlist is not None else "",
            target=to,
            source=ctx.source,
            outcome=reason,
            detail={"template": template},
            at=ctx.now,
        )
        return None
    raw = compose(
        ctx, template, to, mlist=mlist, reply_to=reply_to, in_reply_to=in_reply_to, **variables
    )
    sender = mlist.address("-bounces") if mlist is not None else ctx.settings.site.site_address
    return outbox.queue_mail(
        ctx.session,
        mail_from=sender,
        recipients=[to],
        raw=raw,
        retry_for=timedelta(hours=ctx.settings.delivery.retry_for_hours),
        kind="service",
        list_id=mlist.id if mlist is not None else None,
        now=ctx.now,
    )
