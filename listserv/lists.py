# SPDX-License-Identifier: Apache-2.0
"""Mailing lists in the database, and their seeding from the configuration.

Lists named in the TOML file are created or updated from it at start (the
file wins for the keys it sets, so an operator's edit takes effect on
restart); lists made with `listserv lists create` live in the database only.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv import roster
from listserv.actors import system_actor
from listserv.config import ListSettings, Settings
from listserv.decorate import ListIdentity
from listserv.eligibility import EligibilityRule, describe_rule
from listserv.models import MailingList, Member, Role

#: ListSettings fields copied onto MailingList columns of the same name.
SYNCED_FIELDS = (
    "display_name",
    "description",
    "join_phrases",
    "leave_phrases",
    "eligible_domains",
    "allowed_addresses",
    "allowed_domains",
    "ineligible_policy",
    "confirm_expiry_hours",
    "subject_prefix",
    "non_member_action",
    "moderated",
    "announce_only",
    "max_message_size",
    "dmarc_mitigation",
    "original_sender_header",
    "delivery_style",
    "review_policy",
    "notify_owners",
    "archive_access",
    "digest_schedule",
    "digest_hour",
    "digest_size_kb",
    "public",
    "retention_days",
    "bounce_score_threshold",
    "bounce_stale_after_days",
    "bounce_warnings",
    "bounce_warning_interval_days",
    "bounce_temporary_score",
    "bounce_probe",
    "bounce_forward_unrecognised",
)


def get_list(session: Session, name: str) -> MailingList | None:
    return session.scalar(select(MailingList).where(MailingList.name == name.strip().lower()))


def all_lists(session: Session) -> Sequence[MailingList]:
    return session.scalars(select(MailingList).order_by(MailingList.name)).all()


def list_names(session: Session) -> set[str]:
    return set(session.scalars(select(MailingList.name)))


def eligibility_rule(mlist: MailingList) -> EligibilityRule:
    return EligibilityRule(
        suffixes=tuple(mlist.eligible_domains or ()),
        allowed_addresses=tuple(mlist.allowed_addresses or ()),
        allowed_domains=tuple(mlist.allowed_domains or ()),
    )


def eligibility_text(mlist: MailingList) -> str:
    return describe_rule(eligibility_rule(mlist))


def apply_settings(mlist: MailingList, settings: ListSettings) -> None:
    for name in SYNCED_FIELDS:
        value = getattr(settings, name)
        setattr(mlist, name, list(value) if isinstance(value, tuple) else value)


def apply_config_changes(mlist: MailingList, settings: ListSettings) -> None:
    """Apply the keys whose configured value changed since the last sync.

    So `listserv lists set` on a configured list is not undone by the next
    start, while an operator's edit of the file still takes effect.
    """
    previous = dict(mlist.config_synced or {})
    current: dict[str, object] = {}
    for name in SYNCED_FIELDS:
        value = getattr(settings, name)
        current[name] = list(value) if isinstance(value, tuple) else value
        if name not in previous or previous[name] != current[name]:
            setattr(mlist, name, current[name])
    mlist.config_synced = current


def sync_from_config(session: Session, settings: Settings) -> list[str]:
    """Create or update every configured list and its configured owners/moderators."""
    actor = system_actor("config")
    touched = []
    for lst in settings.lists:
        mlist = get_list(session, lst.name)
        if mlist is None:
            mlist = MailingList(name=lst.name, domain=settings.site.domain, from_config=True)
            session.add(mlist)
        apply_config_changes(mlist, lst)
        mlist.domain = settings.site.domain
        mlist.from_config = True
        session.flush()
        for role, addresses in ((Role.OWNER, lst.owners), (Role.MODERATOR, lst.moderators)):
            existing = set(
                session.scalars(
                    select(Member.address_key).where(
                        Member.list_id == mlist.id, Member.role == role
                    )
                )
            )
            for address in addresses:
                if roster.address_key(address) not in existing:
                    roster.add_member(session, mlist, address, role=role, actor=actor)
        touched.append(lst.name)
    return touched


def list_identity(mlist: MailingList, base_url: str) -> ListIdentity:
    """The list as its mail names it; the list page serves as help page, the archive as archive."""
    page = f"{base_url}/lists/{mlist.name}"
    return ListIdentity(
        name=mlist.name,
        display_name=mlist.display_name,
        domain=mlist.domain,
        subject_prefix=mlist.subject_prefix,
        dmarc_mitigation=mlist.dmarc_mitigation,
        original_sender_header=mlist.original_sender_header,
        archive_url=f"{page}/archive",
        help_url=page,
    )
