# SPDX-License-Identifier: Apache-2.0
"""A list's settings in the console: every key `listserv lists set` takes, same checks.

Each field is read as the words an owner typed and checked by
`acts.list_settings.parse_setting`, so a bad value gets the sentence the
CLI gives, naming the key; all fields are checked before anything changes,
then `acts.lists.change_settings` stores and audits what changed. Legal
hold and emergency hold are switched on their own, each after a page that
says what the switch does and asks to confirm.
"""

from __future__ import annotations

import json
from typing import Any

from listserv.actors import Actor
from listserv.acts import list_settings, lists
from listserv.acts.errors import ActError, Invalid
from listserv.context import Context
from listserv.models import MailingList
from listserv.web.console.access import ListAccess, list_page
from listserv.web.console.handlers import FieldErrors
from listserv.web.pages import Page
from listserv.web.signin.visitor import Visitor

HOLDS = {
    "legal_hold": (
        "legal hold",
        "Nothing of the list may be deleted while it is on: no retention purge, no deleted "
        "posts, no deleted list. Put it on when the list's records are subject to litigation "
        "or an investigation.",
    ),
    "emergency_hold": (
        "emergency hold",
        "Every post to the list is held for the moderators while it is on, from everyone, "
        "owners included (LISTSERV's HOLD).",
    ),
}


def editable_fields() -> tuple[str, ...]:
    return tuple(f for f in list_settings.settable_fields() if f not in HOLDS)


def shown(value: Any) -> str:
    """A column's value as the words the form shows (and parse_setting reads back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
        return json.dumps(items) if any("," in i for i in items) else ", ".join(items)
    return str(value)


def field_rows(mlist: MailingList, typed: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for key in editable_fields():
        kind = list_settings.kind_of(key)
        choices: tuple[str, ...] = ()
        if kind is bool:
            choices = ("true", "false")
        elif key in list_settings.CHOICES:
            choices = list_settings.CHOICES[key]
        rows.append(
            {
                "key": key,
                "label": key.replace("_", " ").capitalize(),
                "value": typed.get(key, shown(getattr(mlist, key))),
                "choices": choices,
                "list": kind is tuple,
            }
        )
    return rows


def settings_page(
    visitor: Visitor,
    found: ListAccess,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    confirm: str = "",
    status: int = 200,
) -> Page:
    mlist = found.mlist
    return list_page(
        "web/settings.html",
        visitor,
        found,
        "Settings",
        status=status,
        notice=notice,
        errors=errors,
        fields=field_rows(mlist, typed or {}),
        holds=[(key, words, text, getattr(mlist, key)) for key, (words, text) in HOLDS.items()],
        confirm=confirm if confirm in HOLDS else "",
    )


def save(ctx: Context, actor: Actor, mlist: MailingList, form: dict[str, str]) -> str:
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key in editable_fields():
        if key not in form:
            continue
        try:
            changes[key] = list_settings.parse_setting(key, form[key])
        except ActError as error:
            errors[key] = error.message
    if errors:
        raise FieldErrors(errors)
    before = lists.change_settings(ctx, actor, mlist, changes)
    if not before:
        return "Nothing was changed."
    return f"Saved: {', '.join(k.replace('_', ' ') for k in before)}."


def switch_hold(ctx: Context, actor: Actor, mlist: MailingList, key: str, on: bool) -> str:
    if key not in HOLDS:
        raise Invalid("Choose which hold to change.")
    changed = lists.change_settings(ctx, actor, mlist, {key: on})
    words = HOLDS[key][0]
    if not changed:
        return f"The {words} was already {'on' if on else 'off'}."
    return f"The {words} of {mlist.display_name} is now {'on' if on else 'off'}."
