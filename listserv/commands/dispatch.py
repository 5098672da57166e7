# SPDX-License-Identifier: Apache-2.0
"""Mail to the command addresses: what the message asks, and the one reply.

Input is a parsed message for `-request`, `-join`, `-leave`, `-confirm+TOKEN`
or the site address; output is the outcomes, a results reply when one is
owed, and audit rows. The `-request` address reads the Subject first (the
list's join/leave phrases, a confirmation code, a command word), else the
body's leading command lines. The dedicated addresses act whatever the
Subject says. The site address takes LISTSERV-style body commands.
"""

from __future__ import annotations

from email.message import EmailMessage

from listserv import notices
from listserv.acts import subscriptions
from listserv.acts.subscriptions import Requester
from listserv.addresses import Destination, Recipient
from listserv.commands import proof
from listserv.commands.identity import display_name_of, identity_from_lines
from listserv.commands.moderate import REPLY_PREFIX, decision_texts
from listserv.commands.parse import find_commands, must, parse_line, run
from listserv.commands.request import CommandRequest, Credentials, Invocation
from listserv.commands.table import COMMANDS
from listserv.confirmations import dispatch as confirmations
from listserv.confirmations.pending import find_request
from listserv.context import Context
from listserv.message import (
    from_addresses,
    header_text,
    normalise_phrase,
    normalised_subject,
    text_body_lines,
)
from listserv.models import MailingList
from listserv.outcomes import Outcome
from listserv.tokens import find_token


def _phrase_in(subject: str, phrases: list[str]) -> bool:
    for phrase in phrases:
        folded = normalise_phrase(phrase)
        if folded and (subject == folded or folded in subject):
            return True
    return False


def _subject_invocations(request: CommandRequest, subject: str) -> list[Invocation]:
    """Commands the Subject carries, per the -request rules."""
    mlist = request.mlist
    if mlist is not None and _phrase_in(subject, list(mlist.leave_phrases or [])):
        return [Invocation(must(COMMANDS, "unsubscribe"), [], subject)]
    if mlist is not None and _phrase_in(subject, list(mlist.join_phrases or [])):
        return [Invocation(must(COMMANDS, "subscribe"), [], subject)]
    token = find_token(subject)
    if token is not None and ("confirm" in subject or subject.strip() == token):
        return [Invocation(must(COMMANDS, "confirm"), [token], subject)]
    invocation = parse_line(COMMANDS, subject)
    return [invocation] if invocation is not None else []


def _decision_reply(
    request: CommandRequest, msg: EmailMessage, body: list[str]
) -> list[tuple[str, Outcome]]:
    """A reply to a held-post or approval notice sent to -request or the site address.

    Its Subject carries the notice's token; the decision is read like one sent
    to the notice's confirm address (first line, else Subject).
    """
    token = find_token(header_text(msg, "Subject"))
    if token is None:
        return []
    pending = find_request(request.ctx.session, token)
    if pending is None or pending.kind not in confirmations.DECISIONS:
        return []
    words = decision_texts(msg, body)
    outcome = confirmations.confirm(request.ctx, request.actor, token, words=words)
    return [("(reply to the notice)", outcome)]


def _with_subject_token(invocations: list[Invocation], msg: EmailMessage) -> list[Invocation]:
    """LISTSERV's "OK" reply: a CONFIRM/OK line without a code takes the Subject's."""
    token = find_token(header_text(msg, "Subject"))
    if token is None:
        return invocations
    return [
        Invocation(inv.command, [token], inv.line)
        if inv.command.name == "confirm" and find_token(" ".join(inv.args)) is None
        else inv
        for inv in invocations
    ]


def _invocations(request: CommandRequest, msg: EmailMessage, body: list[str]) -> list[Invocation]:
    """The commands a message to the site address or -request carries."""
    if request.site:
        invocations = find_commands(COMMANDS, body)
        if not invocations:
            subject = normalised_subject(msg)
            token = find_token(subject)
            if token is not None:
                invocations = [Invocation(must(COMMANDS, "confirm"), [token], subject)]
            elif (found := parse_line(COMMANDS, header_text(msg, "Subject"))) is not None:
                invocations = [found]
    else:
        invocations = _subject_invocations(request, normalised_subject(msg))
        if not invocations:
            invocations = find_commands(COMMANDS, body)
    return _with_subject_token(invocations, msg)


def handle(
    ctx: Context,
    msg: EmailMessage,
    recipient: Recipient,
    mlist: MailingList | None,
    sender: str,
    *,
    password: str | None = None,
    envelope_from: str = "",
) -> list[tuple[str, Outcome]]:
    """Run what the message asks and send the reply it is owed.

    `password` is the `Approved:` password the message carried, already
    removed from everything stored (approved.take_password).
    """
    from_header = from_header_text(msg) or sender
    body = text_body_lines(msg, limit=60)
    request = CommandRequest(
        ctx=ctx,
        mlist=mlist,
        sender=sender,
        from_header=from_header,
        message=msg,
        body_lines=body,
        site=recipient.destination == Destination.SITE,
        message_id=header_text(msg, "Message-ID"),
        credentials=Credentials(password=password, envelope_from=envelope_from),
        commands=COMMANDS,
    )
    actor = request.actor
    request.confirm = lambda token: confirmations.confirm(ctx, actor, token)
    results: list[tuple[str, Outcome]]
    destination = recipient.destination
    if destination == Destination.CONFIRM:
        outcome = confirmations.confirm(
            ctx, actor, recipient.extension, words=decision_texts(msg, body)
        )
        results = [(typed_reply(body), outcome)]
    elif destination == Destination.JOIN and mlist is not None:
        name, title = identity_from_lines(body, display_name_of(from_header))
        outcome = subscriptions.request_join(
            ctx, actor, mlist, Requester(from_header=from_header, name=name, title=title)
        )
        results = [("subscribe", outcome)]
    elif destination == Destination.LEAVE and mlist is not None:
        results = [("unsubscribe", subscriptions.request_leave(ctx, actor, mlist, sender))]
    else:
        results = _decision_reply(request, msg, body) or run(
            request, _invocations(request, msg, body)
        )
    # Owner commands that wait for their owner's OK: one confirmation per list.
    proof.send_confirmations(request)

    if not results:
        results = [
            (
                "",
                Outcome.error(
                    "No command was found in your message. Send HELP for the list of commands."
                ),
            )
        ]
        results.append(("help", must(COMMANDS, "help").run(request, [])))
    if _reply_owed(request, results):
        notices.send_notice(
            ctx,
            "command_results.txt.j2",
            sender,
            mlist=mlist,
            in_reply_to=request.message_id,
            results=[
                {"line": line, "status": outcome.status.value, "text": outcome.text}
                for line, outcome in results
            ],
            subject=reply_subject(header_text(msg, "Subject"), mlist, destination),
            written_to=written_to(ctx, recipient, mlist),
        )
    return results


#: The address each destination is known by, for "your message to …".
_SUFFIX_OF = {
    Destination.REQUEST: "-request",
    Destination.JOIN: "-join",
    Destination.LEAVE: "-leave",
    Destination.OWNER: "-owner",
}


def written_to(ctx: Context, recipient: Recipient, mlist: MailingList | None) -> str:
    """The address the message was sent to, as the reply names it."""
    if mlist is None or recipient.destination == Destination.SITE:
        return ctx.settings.site.site_address
    if recipient.destination == Destination.CONFIRM:
        return mlist.address(f"-confirm+{recipient.extension}")
    return mlist.address(_SUFFIX_OF.get(recipient.destination, "-request"))


def typed_reply(body: list[str]) -> str:
    """What a reply to a confirmation said, as the person typed it (first own line)."""
    for raw in body:
        line = raw.strip()
        if line.startswith((">", "--")):
            break
        if line and not line.endswith("wrote:"):  # not the client's attribution line
            return line[:200]
    return "(your reply)"


def reply_subject(original: str, mlist: MailingList | None, destination: Destination) -> str:
    """A plain subject: one "Re:", and no confirmation code repeated back."""
    bare = REPLY_PREFIX.sub("", original).strip()
    if destination == Destination.CONFIRM or find_token(bare) is not None:
        where = mlist.display_name if mlist is not None else "the list"
        return f"{where}: the result of your reply"
    return f"Re: {bare}" if bare else "Re: your request"


def _reply_owed(request: CommandRequest, results: list[tuple[str, Outcome]]) -> bool:
    """The site address always answers (LISTSERV does); elsewhere only when an
    outcome has not already mailed the person concerned."""
    if not request.sender:
        return False
    return request.site or any(not outcome.notified for _, outcome in results)


def from_header_text(msg: EmailMessage) -> str:
    """The From addresses re-quoted from their parsed form, for the eligibility check.

    Decoded RFC 2047 names may hold commas or look like addresses; quoting
    them keeps one name per address so the check sees what the reader sees.
    """
    parts = []
    for name, address in from_addresses(msg):
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'"{quoted}" <{address}>' if name else f"<{address}>")
    return ", ".join(parts)
