# SPDX-License-Identifier: Apache-2.0
"""The roster: members of each list, their history, and bulk additions.

`rows` changes one member at a time, `bulk` adds many in one transaction,
`history` answers who was a member at a given moment. Every path writes the
membership history and the audit log; permission is checked by the acts.
"""

from listserv.roster.bulk import NewMember, add_members_bulk
from listserv.roster.history import member_history, members_at, previous_keys
from listserv.roster.rows import (
    add_member,
    address_key,
    change_member,
    find_member,
    iter_receiving_members,
    members,
    move_member,
    remove_member,
    roles_of,
    snapshot,
)

__all__ = [
    "NewMember",
    "add_member",
    "add_members_bulk",
    "address_key",
    "change_member",
    "find_member",
    "iter_receiving_members",
    "member_history",
    "members",
    "members_at",
    "move_member",
    "previous_keys",
    "remove_member",
    "roles_of",
    "snapshot",
]
