# SPDX-License-Identifier: Apache-2.0
"""Records export for FOIA requests: a list's posts of a period, provably complete.

Input is a list, a period (on the time the list received each message) and
which statuses to include; output is a directory a records officer can hand
over as it is:

    posts.mbox                 accepted posts (opens with Python's `mailbox.mbox`)
    held.mbox, rejected.mbox, discarded.mbox   only when asked for, one per status
    messages/<status>/<received>-<post id>.eml   each message's original bytes
    recipients/roster-0001.csv  who received accepted posts (see below)
    manifest.csv, manifest.json   one row per message; the JSON adds totals
    SHA256SUMS                 `sha256sum -c SHA256SUMS` checks every file

The .eml files are the bytes as received, unchanged; the mbox copies differ
only by mbox framing (the `From ` separator line and `>From` quoting). Each
manifest row carries the SHA-256 of its .eml and whether it equals the hash
stored when the message arrived, so tampering since receipt would show.

Who received an accepted post is answered from the membership history at the
moment it was accepted (`roster.members_at`, the members with regular
delivery enabled — the same set the fan-out sends to): the manifest names
a recipients CSV for each post (posts sent while the roster did not change
share one file) and the equivalent command, `listserv members list LIST
--at <moment>`. The manifest's totals include the archive's own counts for
the period per status, so a reader can see nothing was left out.
"""

from __future__ import annotations

import csv
import hashlib
import json
import mailbox
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listserv.models import DeliveryMode, DeliveryStatus, MailingList, MembershipEvent, Post, Role
from listserv.models import PostStatus as S

MBOX_NAMES = {
    S.ACCEPTED: "posts.mbox",
    S.HELD: "held.mbox",
    S.REJECTED: "rejected.mbox",
    S.DISCARDED: "discarded.mbox",
}
MANIFEST_COLUMNS = (
    "seq",
    "post_id",
    "status",
    "reason",
    "received",
    "date",
    "sender",
    "sender_name",
    "subject",
    "message_id",
    "file",
    "size",
    "sha256",
    "sha256_at_receipt",
    "unchanged_since_receipt",
    "mbox",
    "recipient_count",
    "recorded_recipient_count",
    "recipients_file",
    "recipients_command",
)
PAGE = 200


class ExportError(Exception):
    """The export cannot be written (the directory is not empty, …)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S%fZ")


def _from_line(sender: str, received: datetime) -> bytes:
    """The mbox separator: `From sender asctime`, with a sender that has no spaces."""
    who = "".join(c for c in sender if c > " " and c != "\x7f") or "MAILER-DAEMON"
    return f"From {who} {time.asctime(received.timetuple())}\n".encode("ascii", "replace")


def fanout_moment(post: Any) -> datetime:
    """When an accepted post went out: its decision (approval) time, else receipt."""
    moment: datetime = post.decided_at or post.received_at
    return moment


class RosterSweep:
    """Replays a list's membership history forward, once, for many moments.

    `members_at` per post would replay the whole history for each; a sweep
    in time order costs one pass, and a new recipients file is written only
    when the set of receiving members actually changed.
    """

    def __init__(self, session: Session, mlist: MailingList, directory: Path) -> None:
        self.directory = directory
        self.events = iter(
            session.execute(
                select(
                    MembershipEvent.at,
                    MembershipEvent.address,
                    MembershipEvent.address_key,
                    MembershipEvent.event,
                    MembershipEvent.delivery_mode,
                    MembershipEvent.delivery_status,
                    MembershipEvent.previous_address_key,
                )
                .where(MembershipEvent.list_id == mlist.id, MembershipEvent.role == Role.MEMBER)
                .order_by(MembershipEvent.at, MembershipEvent.id)
                .execution_options(yield_per=5000)
            )
        )
        self.pending: Any = next(self.events, None)
        self.receiving: dict[str, tuple[str, datetime]] = {}
        self.dirty = True
        self.files: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None

    def _apply(self, event: Any) -> None:
        if event.event == "address" and event.previous_address_key:
            # One member under a new address: the old key stops receiving here.
            if self.receiving.pop(event.previous_address_key, None) is not None:
                self.dirty = True
        receives = (
            event.event != "leave"
            and event.delivery_mode == DeliveryMode.REGULAR
            and event.delivery_status == DeliveryStatus.ENABLED
        )
        before = self.receiving.get(event.address_key)
        if receives:
            if before is None or before[0] != event.address:
                self.dirty = True
            self.receiving[event.address_key] = (event.address, event.at)
        elif before is not None:
            del self.receiving[event.address_key]
            self.dirty = True

    def at(self, moment: datetime) -> dict[str, Any]:
        """The recipients file (name, count, sha256) for a moment; moments must not go back."""
        while self.pending is not None and self.pending.at <= moment:
            self._apply(self.pending)
            self.pending = next(self.events, None)
        if self.dirty or self.current is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"roster-{len(self.files) + 1:04d}.csv"
            path = self.directory / name
            with path.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(["address", "receiving_since"])
                for key in sorted(self.receiving):
                    address, since = self.receiving[key]
                    writer.writerow([address, since.isoformat()])
            self.current = {
                "file": f"recipients/{name}",
                "count": len(self.receiving),
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
                "first_moment": moment.isoformat(),
            }
            self.files.append(self.current)
            self.dirty = False
        return self.current


@dataclass
class ExportResult:
    directory: Path
    manifest: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, Any]:
        totals: dict[str, Any] = self.manifest["totals"]
        return totals


def _posts(
    session: Session, mlist: MailingList, since: datetime, until: datetime, statuses: Sequence[str]
) -> Iterator[Post]:
    """The period's posts in order of receipt, a page at a time (raw bytes are large)."""
    ids = list(
        session.scalars(
            select(Post.id)
            .where(
                Post.list_id == mlist.id,
                Post.status.in_(list(statuses)),
                Post.received_at >= since,
                Post.received_at < until,
            )
            .order_by(Post.received_at, Post.id)
        )
    )
    for start in range(0, len(ids), PAGE):
        page = ids[start : start + PAGE]
        found = {p.id: p for p in session.scalars(select(Post).where(Post.id.in_(page)))}
        for post_id in page:
            yield found[post_id]
            session.expunge(found[post_id])


def archive_counts(
    session: Session, mlist: MailingList, since: datetime, until: datetime
) -> dict[str, int]:
    counts = dict(
        session.execute(
            select(Post.status, func.count())
            .where(Post.list_id == mlist.id, Post.received_at >= since, Post.received_at < until)
            .group_by(Post.status)
        ).all()
    )
    return {status.value: int(counts.get(status, 0)) for status in S}


def export_archive(
    session: Session,
    mlist: MailingList,
    out: Path,
    *,
    since: datetime,
    until: datetime,
    statuses: Sequence[str] = (S.ACCEPTED,),
    recipients: bool = True,
    generated_by: str = "",
    now: datetime,
) -> ExportResult:
    """Write the export directory (see the module docstring); returns the manifest."""
    if until <= since:
        raise ExportError("the end of the period must be after its start")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty directory")
    list_name, display_name = mlist.name, mlist.display_name
    counts = archive_counts(session, mlist, since, until)
    out.mkdir(parents=True, exist_ok=True)
    ordered = [s for s in S if s in statuses]
    sweep = RosterSweep(session, mlist, out / "recipients") if recipients else None
    rosters: dict[int, dict[str, Any]] = {}
    if sweep is not None and S.ACCEPTED in ordered:
        # Approval can come after later posts arrived: sweep in order of fan-out.
        accepted = session.execute(
            select(Post.id, Post.received_at, Post.decided_at).where(
                Post.list_id == mlist.id,
                Post.status == S.ACCEPTED,
                Post.received_at >= since,
                Post.received_at < until,
            )
        ).all()
        for post_id, moment in sorted(
            ((p.id, fanout_moment(p)) for p in accepted), key=lambda pm: (pm[1], pm[0])
        ):
            rosters[post_id] = sweep.at(moment)
    boxes = {s: mailbox.mbox(str(out / MBOX_NAMES[s]), create=True) for s in ordered}
    rows: list[dict[str, Any]] = []
    try:
        for box in boxes.values():
            box.lock()
        for seq, post in enumerate(_posts(session, mlist, since, until, ordered), start=1):
            status = S(post.status)
            folder = out / "messages" / status.value
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{_stamp(post.received_at)}-{post.id:06d}.eml"
            raw = bytes(post.raw)
            (folder / name).write_bytes(raw)
            digest = hashlib.sha256(raw).hexdigest()
            boxes[status].add(_from_line(post.sender, post.received_at) + raw)
            row: dict[str, Any] = {
                "seq": seq,
                "post_id": post.id,
                "status": status.value,
                "reason": post.reason,
                "received": _iso(post.received_at),
                "date": _iso(post.date),
                "sender": post.sender,
                "sender_name": post.sender_name,
                "subject": post.subject,
                "message_id": post.message_id,
                "file": f"messages/{status.value}/{name}",
                "size": len(raw),
                "sha256": digest,
                "sha256_at_receipt": post.sha256,
                "unchanged_since_receipt": (digest == post.sha256) if post.sha256 else None,
                "mbox": MBOX_NAMES[status],
                "recipient_count": None,
                "recorded_recipient_count": None,
                "recipients_file": "",
                "recipients_command": "",
            }
            if status == S.ACCEPTED:
                moment = fanout_moment(post)
                row["recipients_command"] = (
                    f"listserv members list {list_name} --at {moment.isoformat()}"
                )
                row["recorded_recipient_count"] = post.recipient_count
                roster_file = rosters.get(post.id)
                if roster_file is not None:
                    row["recipients_file"] = roster_file["file"]
                    row["recipient_count"] = roster_file["count"]
            rows.append(row)
    finally:
        for box in boxes.values():
            box.flush()
            box.unlock()
            box.close()

    manifest_csv = out / "manifest.csv"
    with manifest_csv.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=list(MANIFEST_COLUMNS), extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)

    files: list[dict[str, Any]] = []
    for status in ordered:
        path = out / MBOX_NAMES[status]
        files.append(
            {
                "file": MBOX_NAMES[status],
                "kind": "mbox",
                "status": status.value,
                "messages": sum(1 for r in rows if r["status"] == status.value),
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
            }
        )
    if sweep is not None:
        files.extend({"kind": "recipients", **f} for f in sweep.files)
    files.append(
        {
            "file": "manifest.csv",
            "kind": "manifest",
            "messages": len(rows),
            "bytes": manifest_csv.stat().st_size,
            "sha256": sha256_file(manifest_csv),
        }
    )
    exported = {s.value: sum(1 for r in rows if r["status"] == s.value) for s in ordered}
    manifest: dict[str, Any] = {
        "list": list_name,
        "display_name": display_name,
        "generated_at": now.isoformat(),
        "generated_by": generated_by,
        "period": {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "on": "received (when the list server accepted each message); until is exclusive",
        },
        "statuses": [s.value for s in ordered],
        "totals": {
            "messages": len(rows),
            "bytes": sum(r["size"] for r in rows),
            "by_status": exported,
            "archive_by_status": counts,
            "complete": all(exported[s] == counts[s] for s in exported),
            "eml_files": len(rows),
            "recipients_files": len(sweep.files) if sweep is not None else 0,
        },
        "recipients": (
            "recipients_file names a CSV of the members with regular delivery enabled when "
            "the post was accepted (from the membership history); recipients_command gives "
            "the same list. recorded_recipient_count is the fan-out's own count."
        ),
        "files": files,
        "messages": rows,
    }
    manifest_json = out / "manifest.json"
    manifest_json.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
    sums = [(f["file"], f["sha256"]) for f in files]
    sums.extend((r["file"], r["sha256"]) for r in rows)
    sums.append(("manifest.json", sha256_file(manifest_json)))
    (out / "SHA256SUMS").write_text(
        "".join(f"{digest}  {name}\n" for name, digest in sums), "utf-8"
    )
    return ExportResult(out, manifest, rows)
