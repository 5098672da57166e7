# SPDX-License-Identifier: Apache-2.0
"""`listserv members list|add|remove|set|show|import|export`.

`set` changes delivery and conduct measures (moderation and suspension until
a date, with a note) through `roster` and `conduct`, so each change lands in
the history and the audit log. `import` reads CSV, plain, LISTSERV REVIEW or
Mailman rosters (`roster_io`), checks every line, and writes all of it or
nothing in one bulk transaction; `export` writes CSV.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from listserv import bans, conduct, roster, roster_io
from listserv.cli.common import (
    CLIError,
    actor,
    console,
    emit,
    errors,
    open_context,
    require_list,
)
from listserv.cli.options import parse_when
from listserv.eligibility import Ineligible, check_address
from listserv.lists import eligibility_rule
from listserv.models import AuditEvent, DeliveryStatus, Member, MembershipEvent, Role

app = typer.Typer(help="Members, owners and moderators of a list.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ROLES = [r.value for r in Role]


def member_row(member: Member) -> dict[str, Any]:
    return {
        "address": member.address,
        "name": member.display_name,
        "title": member.job_title,
        "role": member.role,
        "delivery": member.delivery_mode,
        "status": member.delivery_status,
        "joined": member.joined_at,
    }


@app.command("list")
def list_members(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    role: Annotated[str | None, typer.Option(help=f"Only this role: {', '.join(ROLES)}.")] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Who was a receiving member at this moment (from the history), "
            "e.g. 2025-03-01T14:30:00Z; no offset means UTC."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The roster of a list."""
    if role is not None and role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        if at is not None:
            moment = parse_when(at, option="--at")
            rows = [
                {
                    "address": e.address,
                    "name": "",
                    "role": e.role,
                    "delivery": e.delivery_mode,
                    "status": e.delivery_status,
                    "since": e.at,
                }
                for e in roster.members_at(ctx.session, mlist, moment)
            ]
            columns = ["address", "role", "delivery", "status", "since"]
        else:
            rows = [member_row(m) for m in roster.members(ctx.session, mlist, role)]
            columns = ["address", "name", "title", "role", "delivery", "status", "joined"]
        title = f"{mlist.display_name}: {len(rows)}"
    emit(rows, columns, as_json=as_json, title=title)


@app.command("add")
def add(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    address: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    title: Annotated[str, typer.Option(help="Job title.")] = "",
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "member",
    force: Annotated[
        bool, typer.Option("--force", help="Add even if the address is not eligible.")
    ] = False,
    welcome: Annotated[bool, typer.Option(help="Mail the welcome message.")] = True,
) -> None:
    """Add a member directly (no confirmation; eligibility still checked unless --force)."""
    if role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        verdict = check_address(address, eligibility_rule(mlist), mlist.display_name)
        if isinstance(verdict, Ineligible):
            if not force or verdict.code != "domain-not-eligible":
                raise CLIError(
                    f"{verdict.reason}"
                    + (
                        " Use --force to add it anyway."
                        if verdict.code == "domain-not-eligible"
                        else ""
                    )
                )
            clean = address.strip()
        else:
            clean = address.strip()
        if roster.find_member(ctx.session, mlist, clean, role) is not None:
            raise CLIError(f"{clean} is already a {role} of {mlist.display_name}")
        member = roster.add_member(
            ctx.session,
            mlist,
            clean,
            name=name,
            title=title,
            role=role,
            actor=actor(),
            channel="cli",
            auth="host",
        )
        if welcome and role == Role.MEMBER:
            from listserv import notices

            notices.send_notice(
                ctx, "welcome.txt.j2", member.address, mlist=mlist, member_name=member.display_name
            )
        console.print(f"added {member.address} to {mlist.display_name} as {role}", highlight=False)


@app.command("remove")
def remove(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    address: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "member",
    reason: Annotated[str, typer.Option(help="Recorded in the audit log.")] = "",
) -> None:
    """Remove a member (no confirmation, no goodbye)."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        member = roster.find_member(ctx.session, mlist, address, role)
        if member is None:
            raise CLIError(f"{address} is not a {role} of {mlist.display_name}")
        roster.remove_member(
            ctx.session, mlist, member, actor=actor(), channel="cli", auth="host", reason=reason
        )
        console.print(f"removed {member.address} from {mlist.display_name}", highlight=False)


DELIVERY_WORDS = {"mail": "regular", "regular": "regular", "digest": "digest", "nomail": "nomail"}


def _require_member(ctx: Any, mlist: Any, address: str, role: str) -> Member:
    member = roster.find_member(ctx.session, mlist, address, role)
    if member is None:
        article = "an" if role[0] in "aeiou" else "a"
        raise CLIError(f"{address} is not {article} {role} of {mlist.display_name}")
    return member


@app.command("set")
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
        member = _require_member(ctx, mlist, address, role)
        who = actor()
        changed: dict[str, Any] = {}
        plain: dict[str, Any] = {}
        if mode is not None:
            plain["delivery_mode"] = mode
        if name is not None:
            plain["display_name"] = name.strip()[:200]
        if title is not None:
            plain["job_title"] = title.strip()[:200]
        if enable:
            if member.delivery_status == DeliveryStatus.SUSPENDED and not lift:
                raise CLIError(
                    f"{member.address} is suspended ({conduct.describe(member)}); use --lift"
                )
            plain.update(delivery_status=DeliveryStatus.ENABLED, bounce_score=0.0)
            plain["bounce_warnings_sent"] = 0
        if moderated is False:
            plain.update(moderated=False, moderated_until=None)
        try:
            if lift:
                changed.update(conduct.lift_conduct(ctx, mlist, member, actor=who, auth="host"))
            if plain:
                changed.update(
                    roster.change_member(
                        ctx.session,
                        mlist,
                        member,
                        plain,
                        actor=who,
                        channel="cli",
                        auth="host",
                        source=ctx.source,
                        now=ctx.now,
                    )
                )
            text = (note if note is not None else member.conduct_note).strip()
            if suspend_at is not None:
                changed.update(
                    conduct.suspend_member(
                        ctx, mlist, member, until=suspend_at, note=text, actor=who, auth="host"
                    )
                )
            if moderate_at is not None or moderated:
                changed.update(
                    conduct.moderate_member(
                        ctx, mlist, member, until=moderate_at, note=text, actor=who, auth="host"
                    )
                )
            if note is not None and suspend_at is None and moderate_at is None and not moderated:
                changed.update(
                    conduct.note_member(ctx, mlist, member, note=text, actor=who, auth="host")
                )
        except conduct.ConductError as exc:
            raise CLIError(str(exc)) from None
        if not changed:
            console.print(f"{member.address}: nothing changed", highlight=False)
            return
        console.print(
            f"{member.address} on {mlist.display_name}: changed {', '.join(sorted(changed))}; "
            f"now {member.delivery_mode}, {member.delivery_status}; {conduct.describe(member)}",
            highlight=False,
        )


@app.command("show")
def show_member(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    address: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "member",
    as_json: JsonOption = False,
) -> None:
    """Every setting of one member, their conduct status and their history."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        member = _require_member(ctx, mlist, address, role)
        row: dict[str, Any] = member_row(member)
        row.update(
            moderated=member.moderated,
            moderated_until=member.moderated_until,
            suspended_until=member.suspended_until,
            conduct_note=member.conduct_note,
            conduct=conduct.describe(member),
            bounce_score=member.bounce_score,
            last_bounce_at=member.last_bounce_at,
            bounce_warnings_sent=member.bounce_warnings_sent,
            other_roles=sorted(roster.roles_of(ctx.session, mlist, member.address) - {role}),
            has_password=bool(member.password_hash),
        )
        history = ctx.session.scalars(
            select(MembershipEvent)
            .where(
                MembershipEvent.list_id == mlist.id,
                MembershipEvent.address_key == member.address_key,
                MembershipEvent.role == role,
            )
            .order_by(MembershipEvent.at, MembershipEvent.id)
        ).all()
        row["history"] = [
            {
                "at": e.at.isoformat(),
                "event": e.event,
                "delivery": e.delivery_mode,
                "status": e.delivery_status,
                "actor": e.actor,
                "channel": e.channel,
            }
            for e in history
        ]
        measures = ctx.session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.list_name == mlist.name,
                AuditEvent.action.in_(conduct.ACTIONS),
                AuditEvent.target == member.address,
            )
            .order_by(AuditEvent.at, AuditEvent.id)
        ).all()
        row["conduct_history"] = [
            {
                "at": a.at.isoformat(),
                "action": a.action,
                "actor": a.actor,
                "channel": a.channel,
                "note": (a.detail or {}).get("after", {}).get("conduct_note", ""),
            }
            for a in measures
        ]
    if as_json:
        emit([row], list(row), as_json=True)
        return
    for key, value in row.items():
        if key in ("history", "conduct_history"):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        if isinstance(value, datetime):
            value = f"{value:%Y-%m-%d %H:%M:%S} UTC"
        if value is None or value == "":
            value = "-"
        console.print(f"[bold]{key.replace('_', ' ')}[/bold]: {value}", highlight=False)
    for key, columns in (
        ("conduct_history", ["at", "action", "actor", "channel", "note"]),
        ("history", ["at", "event", "delivery", "status", "actor", "channel"]),
    ):
        if row[key]:
            table = Table(title=key.replace("_", " "))
            for column in columns:
                table.add_column(column)
            for item in row[key]:
                when = datetime.fromisoformat(item["at"])
                cells = [f"{when:%Y-%m-%d %H:%M:%S}", *(str(item[c]) for c in columns[1:])]
                table.add_row(*cells)
            console.print(table)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not errors.is_terminal,
    )


@app.command("import")
def import_members(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    file: Annotated[str, typer.Argument(metavar="FILE", help="The roster file, or - for stdin.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="auto (default), csv, plain, listserv (REVIEW output) or mailman."
        ),
    ] = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and count; change nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Add addresses outside the eligibility rule too.")
    ] = False,
    welcome: Annotated[
        bool, typer.Option("--welcome", help="Mail the welcome message to each new member.")
    ] = False,
    audit_each: Annotated[
        bool,
        typer.Option(
            "--audit-each/--audit-summary",
            help="An audit row per member added (default), or only the import's summary.",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Add members from a file: all lines or none, with a count and every refused line."""
    fmt = fmt.strip().lower()
    if fmt != "auto" and fmt not in roster_io.FORMATS:
        raise CLIError(f"--format must be auto or one of {', '.join(roster_io.FORMATS)}")
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        source = roster_io.RosterFile(roster_io.decode(data), fmt)
    except roster_io.RosterFileError as exc:
        raise CLIError(f"{file}: {exc}") from None
    del data
    who = actor()
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        rule = eligibility_rule(mlist)
        existing = _member_keys(ctx.session, mlist.id)
        matchers = bans.matchers(ctx.session, mlist)
        ctx.session.commit()  # checking takes a while: hold no lock meanwhile
        with _progress() as progress:
            task = progress.add_task("checking", total=source.size)
            plan = roster_io.plan_import(
                source.entries(),
                fmt=source.format,
                rule=rule,
                label=mlist.display_name,
                existing=existing,
                bans=matchers,
                force=force,
                progress=lambda n: progress.advance(task, n),
            )
            plan.ignored = source.ignored
            source.lines.clear()  # the file's text is no longer needed
            if not dry_run and plan.to_add:
                # Anyone who joined while we were checking counts as already a member.
                now_existing = _member_keys(ctx.session, mlist.id) - existing
                if now_existing:
                    late = [m for m in plan.to_add if m.key in now_existing]
                    plan.to_add = [m for m in plan.to_add if m.key not in now_existing]
                    plan.already.extend(
                        roster_io.Problem(0, m.address, "joined during the import", m.address)
                        for m in late
                    )
                insert = progress.add_task("adding", total=len(plan.to_add))
                done = [0]

                def advanced(total: int) -> None:
                    progress.advance(insert, total - done[0])
                    done[0] = total

                summary = {
                    **plan.summary(),
                    "file": file,
                    "force": force,
                    "welcome": welcome,
                }
                try:
                    roster.add_members_bulk(
                        ctx.session,
                        mlist,
                        plan.to_add,
                        actor=who,
                        channel="cli",
                        auth="host",
                        source=ctx.source,
                        now=ctx.now,
                        audit_each=audit_each,
                        summary=summary,
                        on_batch=advanced,
                    )
                    if welcome:
                        from listserv import notices

                        for new in plan.to_add:
                            notices.send_notice(
                                ctx,
                                "welcome.txt.j2",
                                new.address,
                                mlist=mlist,
                                member_name=new.name,
                            )
                except SQLAlchemyError as exc:
                    first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                    raise CLIError(f"import failed, nobody was added: {first}") from None
    _report_import(plan, mlist_name=list_name, dry_run=dry_run, as_json=as_json)


def _member_keys(session: Any, list_id: int) -> set[str]:
    return set(
        session.scalars(
            select(Member.address_key).where(Member.list_id == list_id, Member.role == Role.MEMBER)
        )
    )


def _report_import(
    plan: roster_io.ImportPlan, *, mlist_name: str, dry_run: bool, as_json: bool
) -> None:
    summary = {**plan.summary(), "list": mlist_name, "dry_run": dry_run}
    if as_json:
        summary["refused_lines"] = [p.as_dict() for p in plan.refused]
        summary["duplicate_lines"] = [p.as_dict() for p in plan.duplicates]
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        return
    verb = "would add" if dry_run else "added"
    console.print(
        f"{mlist_name}: {plan.records} records read ({plan.format}); {verb} {len(plan.to_add)}, "
        f"already members {len(plan.already)}, duplicates in file {len(plan.duplicates)}, "
        f"refused {len(plan.refused)}"
        + (f"; {plan.ignored} header/footer lines ignored" if plan.ignored else ""),
        highlight=False,
    )
    problems = sorted([*plan.refused, *plan.duplicates], key=lambda p: p.line)
    if problems:
        table = Table(title="Lines not imported")
        for column in ("line", "text", "reason"):
            table.add_column(column)
        for problem in problems:
            table.add_row(str(problem.line), problem.text, problem.reason)
        console.print(table)


@app.command("export")
def export_members(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (default: standard output).")
    ] = None,
    role: Annotated[
        str | None, typer.Option(help=f"Only this role: {', '.join(ROLES)} (default: all).")
    ] = None,
) -> None:
    """The roster as CSV: address, name, title, role, delivery, status, joined."""
    if role is not None and role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        stmt = (
            select(Member)
            .where(Member.list_id == mlist.id)
            .order_by(Member.address_key, Member.role)
            .execution_options(yield_per=2000)
        )
        if role:
            stmt = stmt.where(Member.role == role)
        rows = ctx.session.scalars(stmt)
        if out is None:
            roster_io.write_export(rows, sys.stdout)
            return
        try:
            with out.open("w", encoding="utf-8", newline="") as handle:
                count = roster_io.write_export(rows, handle)
        except OSError as exc:
            raise CLIError(f"cannot write {out}: {exc.strerror or exc}") from None
    console.print(f"exported {count} row(s) of {mlist.display_name} to {out}", highlight=False)
