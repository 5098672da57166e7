# SPDX-License-Identifier: Apache-2.0
"""The `Approved:` lock-out over real SMTP: keyed to the sender's proof (From and
envelope together), never locking an owner out of the OK round trip."""

from __future__ import annotations

from tests.admin_mail import (
    ATTACKER,
    OWNER,
    PASSWORD,
    Mailbox,
    audit_rows,
    command,
    reply,
    running,
    set_password,
    with_list,
)
from tests.conftest import settle


def held(service) -> bool:  # type: ignore[no-untyped-def]
    return bool(with_list(service, lambda ctx, mlist: mlist.emergency_hold))


async def test_wrong_passwords_under_a_forged_from_do_not_lock_out_the_owner(
    db_url, tmp_path
) -> None:
    async with running(db_url, tmp_path) as service:
        set_password(service)
        for attempt in range(8):
            await command(
                service, "HOLD SM-COP\n", envelope_from=ATTACKER, Approved=f"guess {attempt}"
            )
        await settle(service)
        assert not held(service)
        outcomes = [a.outcome for a in audit_rows(service, "owner-password")]
        assert outcomes[:5] == ["bad-password"] * 5 and set(outcomes[5:]) == {"password-locked"}
        # The owner's own mail (its own envelope sender) is not locked out.
        await command(service, "HOLD SM-COP\n", Approved=PASSWORD)
        await settle(service)
        assert held(service)


async def test_a_locked_out_owner_can_still_act_by_the_ok_round_trip(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        set_password(service)
        mail = Mailbox(service)
        for attempt in range(5):
            await command(service, "HOLD SM-COP\n", Approved=f"guess {attempt}")
        await settle(service)
        mail.skip_all()
        # Locked: even the right password is not checked, but the owner is asked to confirm.
        await command(service, "HOLD SM-COP\n", Approved=PASSWORD)
        confirmation = await mail.next(OWNER, "confirm 1 owner command")
        assert not held(service)
        await reply(service, confirmation, "OK", sender=OWNER)
        await mail.next(OWNER, "results")
        assert held(service)
        outcomes = [a.outcome for a in audit_rows(service, "owner-password")]
        assert outcomes == ["bad-password"] * 5 + ["password-locked"]
