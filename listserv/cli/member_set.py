# SPDX-License-Identifier: Apache-2.0
"""`listserv members set`: delivery, name and title, conduct measures and re-enabling, in one go.

Each part is its act (`acts.members`, `acts.conduct`), so a change lands in
the membership history and the audit log exactly as the same change by
email, in the console or through the API would; this module only reads the
options, refuses combinations that contradict each other, and prints what
changed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from listserv import conduct
from listserv.acts import conduct as conduct_acts
from listserv.acts import members
from listserv.cli.common import CLIError, actor, console, open_context, require_list
from listserv.cli.options import parse_when
from listserv.models import DeliveryMode, DeliveryStatus, Role

ROLES = [r.value for r in Role]
#: Column names as the options that set them call them.
FIELD_WORDS = {
    "delivery_mode": "delivery",
    "delivery_status": "status",
    "display_name": "name",
    "job_title": "title",
    "moderated_until": "moderated",
    "suspended_until": "suspended",
    "conduct_note": "note",
}
DELIVERY_WORDS = {
    "mail": DeliveryMode.REGULAR,
    "regular": DeliveryMode.REGULAR,
    "digest": DeliveryMode.DIGEST,
    "nomail": DeliveryMode.NOMAIL,
}


def set_member(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    address: str,
    delivery: Annotated[
        str | None, typer.Option(help="mail (every post), digest or nomail.")
    ] = None,
    moderated: Annotated[
        bool | None,
        typer.Option(
            "--moderated/--unmoderated", help="Hold (or stop holding) this member's posts."
        ),
    ] = None,
    enable: Annotated[
        bool,
        typer.Option(
            "--enable", help="Re-enable delivery (e.g. after bounces): clears the bounce score."
        ),
    ] = False,
    suspend_until: Annotated[
        str | None,
        typer.Option(help="Suspend delivery and posting until this date (UTC)."),
    ] = None,
    moderate_until: Annotated[
        str | None, typer.Option(help="Hold this member's posts until this date (UTC).")
    ] = None,
    note: Annotated[
        str | None,
        typer.Option(help="Conduct note (a reminder or notice; kept with any measure)."),
    ] = None,
    lift: Annotated[
        bool, typer.Option("--lift", help="Lift moderation and suspension now.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    title: Annotated[str | None, typer.Option(help="Job title.")] = None,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "member",
) -> None:
    """Change a member's delivery, moderation or suspension; every change is audited."""
    if role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    mode = None
    if delivery is not None:
        mode = DELIVERY_WORDS.get(delivery.strip().lower())
        if mode is None:
            raise CLIError("--delivery must be mail, digest or nomail")
    if lift and (suspend_until or moderate_until or moderated):
        raise CLIError("--lift cannot be combined with a new measure")
    if moderated is False and moderate_until:
        raise CLIError("--unmoderated cannot be combined with --moderate-until")
    if enable and suspend_until:
        raise CLIError("--enable cannot be combined with --suspend-until")
    suspend_at = parse_when(suspend_until, option="--suspend-until") if suspend_until else None
    moderate_at = parse_when(moderate_until, option="--moderate-until") if moderate_until else None
    if not any(
        v is not None for v in (mode, moderated, suspend_at, moderate_at, note, name, title)
    ) and not (enable or lift):
        raise CLIError("nothing to change (see `listserv members set --help`)")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        member = members.find(ctx, mlist, address, Role(role))
        if enable and member.delivery_status == DeliveryStatus.SUSPENDED and not lift:
            raise CLIError(
                f"{member.address} is suspended ({conduct.describe(member)}); use --lift"
            )
        who = actor()
        changed: dict[str, Any] = {}
        plain: dict[str, Any] = {}
        if mode is not None:
            plain["delivery_mode"] = mode
        if name is not None:
            plain["display_name"] = members.clean_text(name)
        if title is not None:
            plain["job_title"] = members.clean_text(title)
        if moderated is False:
            plain.update(moderated=False, moderated_until=None)
        if lift:
            changed.update(conduct_acts.lift(ctx, who, mlist, member.address).before)
        if plain:
            changed.update(members.change_fields(ctx, who, mlist, member, plain).before)
        if enable:
            changed.update(members.enable_delivery(ctx, who, mlist, member.address).before)
        text = (note if note is not None else member.conduct_note).strip()
        if suspend_at is not None:
            change = conduct_acts.suspend(
                ctx, who, mlist, member.address, until=suspend_at, note=text
            )
            changed.update(change.before)
        if moderate_at is not None or moderated:
            change = conduct_acts.moderate(
                ctx, who, mlist, member.address, until=moderate_at, note=text
            )
            changed.update(change.before)
        if note is not None and suspend_at is None and moderate_at is None and not moderated:
            changed.update(conduct_acts.note(ctx, who, mlist, member.address, text=text).before)
        if not changed:
            console.print(f"{member.address}: nothing changed", highlight=False)
            return
        words = sorted({FIELD_WORDS.get(field, field) for field in changed})
        console.print(
            f"{member.address} on {mlist.display_name}: changed {', '.join(words)}; "
            f"now {DeliveryMode(member.delivery_mode).word}, {member.delivery_status}; "
            f"{conduct.describe(member)}",
            highlight=False,
        )
