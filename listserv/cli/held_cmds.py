# SPDX-License-Identifier: Apache-2.0
"""`listserv held list|show|approve|reject|discard`: posts waiting for a moderator.

Decisions go through `moderation`, like those made by replying to a hold notice,
so the host's operator is audited (`auth=host`) and the first decision wins.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Annotated

import typer

from listserv.acts import held
from listserv.cli.common import CLIError, actor, console, emit, open_context, require_list
from listserv.context import Context
from listserv.message import parse_message, text_body_lines
from listserv.models import MailingList, Post
from listserv.posting import moderation

app = typer.Typer(help="Posts held for a moderator's decision.", no_args_is_help=True)

ListArg = Annotated[str, typer.Argument(metavar="LIST", help="The list's name.")]
PostArg = Annotated[int, typer.Argument(metavar="ID", help="The post's number.")]

#: Header fields `held show` prints, in this order, when present.
SHOWN_HEADERS = ("From", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To")
BODY_LINES = 200


def _post(ctx: Context, mlist: MailingList, post_id: int) -> Post:
    post = ctx.session.get(Post, post_id)
    if post is None or post.list_id != mlist.id:
        raise CLIError(f"no post {post_id} on {mlist.display_name} (see `listserv held list`)")
    return post


@app.command("list")
def list_held(
    list_name: ListArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Held posts, oldest first."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        rows = [
            {
                "id": post.id,
                "received": post.received_at,
                "sender": post.sender,
                "subject": post.subject,
                "reason": post.reason.replace("\n", "; "),
                "message_id": post.message_id,
            }
            for post in moderation.held_posts(ctx, mlist)
        ]
    emit(rows, ["id", "received", "sender", "subject", "reason"], as_json=as_json)


@app.command("show")
def show(list_name: ListArg, post_id: PostArg) -> None:
    """A post's headers, text and the reasons it was held (any status)."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        post = _post(ctx, mlist, post_id)
        msg = parse_message(post.raw)
        out = [f"Post {post.id} on {mlist.display_name}: {post.status}"]
        if post.decided_by:
            out.append(f"Decided by {post.decided_by} at {post.decided_at:%Y-%m-%d %H:%M} UTC")
        out.append(f"Received {post.received_at:%Y-%m-%d %H:%M} UTC, {len(post.raw):,} bytes")
        out.append("")
        out.append("Reasons:")
        out.extend(f"  * {line}" for line in post.reason.splitlines() or ["(none)"])
        out.append("")
        for name in SHOWN_HEADERS:
            for value in msg.get_all(name) or []:
                text = " ".join(str(value).split())
                out.append(f"{name}: {text}")
        out.append("")
        lines = text_body_lines(msg, limit=BODY_LINES + 1)
        out.extend(lines[:BODY_LINES] or ["(no text part)"])
        if len(lines) > BODY_LINES:
            out.append(f"[… more than {BODY_LINES} lines]")
        attachments = _attachments(msg)
        if attachments:
            out.append("")
            out.append("Attachments:")
            out.extend(f"  * {line}" for line in attachments)
    console.print("\n".join(out), markup=False, highlight=False, soft_wrap=True)


def _attachments(msg: EmailMessage) -> list[str]:
    """Parts a moderator cannot read here: type, file name, size."""
    found = []
    try:
        for part in msg.walk():
            if part.is_multipart() or part.get_content_disposition() != "attachment":
                continue
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else 0
            name = part.get_filename() or "(no name)"
            found.append(f"{name} ({part.get_content_type()}, {size:,} bytes)")
    except Exception:
        found.append("(the message's MIME structure could not be read)")
    return found


def _act(list_name: str, post_id: int, action: str, reason: str = "") -> None:
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        _post(ctx, mlist, post_id)
        decision = held.decide_post(
            ctx, actor(), mlist, post_id, held.Ruling(action), reason=reason
        )
    console.print(decision.text, markup=False, highlight=False)


@app.command("approve")
def approve(list_name: ListArg, post_id: PostArg) -> None:
    """Approve a held post: it goes to every member, as if accepted."""
    _act(list_name, post_id, "approve")


@app.command("reject")
def reject(
    list_name: ListArg,
    post_id: PostArg,
    reason: Annotated[str, typer.Option("--reason", help="Told to the poster.")] = "",
) -> None:
    """Reject a held post; the poster is told (with --reason, why)."""
    _act(list_name, post_id, "reject", reason)


@app.command("discard")
def discard(list_name: ListArg, post_id: PostArg) -> None:
    """Discard a held post without telling anyone (it stays on record)."""
    _act(list_name, post_id, "discard")
