# SPDX-License-Identifier: Apache-2.0
"""The owner's OK: replaying owner commands once their confirmation comes back.

An owner command from an owner's address without a password waits in an
`owner-commands` request (`proof.send_confirmations`); when the owner
replies to the confirmation, the stored lines run here, as the owner the
confirmation went to.
"""

from __future__ import annotations

from email.message import EmailMessage

from listserv import audit, notices
from listserv.actors import Actor, Auth, email_actor
from listserv.commands.parse import parse_line, run
from listserv.commands.request import CommandRequest, Credentials
from listserv.commands.table import COMMANDS
from listserv.context import Context
from listserv.models import MailingList, PendingRequest
from listserv.outcomes import Outcome


def run_confirmed(
    ctx: Context, actor: Actor, mlist: MailingList, pending: PendingRequest
) -> Outcome:
    """Carry out an `owner-commands` request whose confirmation came back.

    The commands run as the owner the confirmation went to (auth
    `confirmed-reply`), and their results go to that owner's address, not to
    whoever sent the reply, so a forwarded confirmation shows nobody a roster.
    """
    lines = [str(line) for line in (pending.payload or {}).get("commands", [])]
    request = CommandRequest(
        ctx=ctx,
        mlist=None,
        sender=pending.address,
        from_header=f"<{pending.address}>",
        message=EmailMessage(),
        site=True,
        credentials=Credentials(confirmed=(mlist.id, pending.address)),
        commands=COMMANDS,
    )
    invocations = [inv for inv in (parse_line(COMMANDS, line) for line in lines) if inv]
    results = run(request, invocations)
    notices.send_notice(
        ctx,
        "owner_results.txt.j2",
        pending.address,
        mlist=mlist,
        results=[
            {"line": line, "status": outcome.status.value, "text": outcome.text}
            for line, outcome in results
        ],
    )
    audit.record_act(
        ctx.session,
        email_actor(pending.address, Auth.CONFIRMED_REPLY),
        "owner-commands-confirmed",
        list_name=mlist.name,
        target=pending.address,
        source=ctx.source,
        detail={
            "request": pending.id,
            "confirmed_by": actor.address,
            "results": [{"line": line, "status": o.status.value} for line, o in results],
        },
        at=ctx.now,
    )
    done = sum(1 for _, o in results if o.status.value in ("done", "info"))
    return Outcome.done(
        f"{done} of the {len(results)} command(s) for {mlist.display_name} you confirmed were "
        f"carried out; the results were mailed to {pending.address}.",
        notified=True,
    )
