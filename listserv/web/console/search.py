# SPDX-License-Identifier: Apache-2.0
"""Substring search over a list's roster, answered from memory.

`LIKE '%text%'` cannot use an index, so over 100,000 members every search
(and its count) would read the whole table. Instead the console keeps, per
list, the lower-cased address and name of every row in address order, in
one string, tagged with the newest `membership_events` id when it was read; every
roster change writes such a row, so a search that finds a newer id (one
primary-key lookup) reads the roster again. `str.find` over the string of
100,000 rows takes about a millisecond; only the page of rows shown is
then read from the database.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listserv.models import MailingList, Member, MembershipEvent
from listserv.web.pages import Memo


@dataclass(frozen=True)
class RosterIndex:
    """Every row's "address<TAB>name" in one lower-case string, rows split by newlines.

    One string lets `str.find` (C speed) look for the text across the whole
    roster; `starts` maps a hit's position back to its row.
    """

    ids: tuple[int, ...]
    text: str
    starts: tuple[int, ...]
    roles: tuple[str, ...]
    deliveries: tuple[str, ...]

    def matching(self, q: str, role: str, delivery: str) -> list[int]:
        """Ids of the rows whose address or name holds `q`, in address order."""
        if not q and not role and not delivery:
            return list(self.ids)
        if not q:
            return [
                self.ids[row]
                for row in range(len(self.ids))
                if (not role or self.roles[row] == role)
                and (not delivery or self.deliveries[row] == delivery)
            ]
        needle = "".join(q.lower().split("\n")).replace("\t", " ")
        found: list[int] = []
        position = self.text.find(needle)
        while position >= 0:
            row = bisect.bisect_right(self.starts, position) - 1
            if (not role or self.roles[row] == role) and (
                not delivery or self.deliveries[row] == delivery
            ):
                found.append(self.ids[row])
            next_row = row + 1
            if next_row >= len(self.starts):
                break
            position = self.text.find(needle, self.starts[next_row])
        return found


def roster_version(session: Session) -> int:
    return int(session.scalar(select(func.max(MembershipEvent.id))) or 0)


def roster_index(session: Session, memo: Memo, mlist: MailingList) -> RosterIndex:
    version = roster_version(session)
    key = ("roster-index", mlist.id)
    index: RosterIndex | None = memo.get(key, version)
    if index is not None:
        return index
    rows = session.execute(
        select(
            Member.id, Member.address_key, Member.display_name, Member.role, Member.delivery_mode
        )
        .where(Member.list_id == mlist.id)
        .order_by(Member.address_key, Member.role)
    ).all()
    lines = [f"{r[1]}\t{r[2].lower()}".replace("\n", " ") for r in rows]
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    index = RosterIndex(
        ids=tuple(r[0] for r in rows),
        text="\n".join(lines),
        starts=tuple(starts),
        roles=tuple(str(r[3]) for r in rows),
        deliveries=tuple(str(r[4]) for r in rows),
    )
    memo.put(key, version, index)
    return index
