# SPDX-License-Identifier: Apache-2.0
"""An owner's or moderator's `Approved:` password: set or cleared.

Only its Argon2 hash is stored; the audit log records that it changed,
never the password or its hash. Adding and removing owners and moderators
are the roster acts (`members.add_member`/`remove_member` with their role).
"""

from __future__ import annotations

from listserv import audit
from listserv.actors import Actor
from listserv.acts.errors import Invalid
from listserv.acts.members import find
from listserv.acts.permissions import Need, require_self_or
from listserv.context import Context
from listserv.models import MailingList, Member, Role
from listserv.passwords import MIN_LENGTH, hash_password


def set_password(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    address: str,
    password: str | None,
    *,
    role: Role = Role.OWNER,
) -> Member:
    """Set (or with None clear) the password; the person themselves or an owner."""
    member = find(ctx, mlist, address, role)
    require_self_or(ctx.session, actor, mlist, member.address, Need.MANAGE)
    if password is None:
        new_hash = None
    else:
        try:
            new_hash = hash_password(password)
        except ValueError:
            raise Invalid(
                f"a password needs at least {MIN_LENGTH} characters", field="password"
            ) from None
    had = bool(member.password_hash)
    member.password_hash = new_hash
    audit.record_act(
        ctx.session,
        actor,
        "owner-password-clear" if password is None else "owner-password-set",
        list_name=mlist.name,
        target=member.address,
        source=ctx.source,
        detail={
            "before": {"password": had},
            "after": {"password": password is not None},
            "role": role.value,
        },
        at=ctx.now,
    )
    return member
