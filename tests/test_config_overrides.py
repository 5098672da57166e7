# SPDX-License-Identifier: Apache-2.0
"""Settings copies with top-level fields replaced, as `serve --lmtp` and tests make them."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

from listserv.config import Settings, SettingsChanges, with_overrides


def test_every_top_level_field_can_be_overridden() -> None:
    assert set(SettingsChanges.__annotations__) == {f.name for f in dataclasses.fields(Settings)}


def test_with_overrides_replaces_only_what_it_is_given(sqlite_settings: Settings) -> None:
    smtp = replace(sqlite_settings.smtp, lmtp=True)
    changed = with_overrides(sqlite_settings, smtp=smtp, database_url="sqlite:///other")
    assert changed.smtp.lmtp and changed.database_url == "sqlite:///other"
    assert changed.site is sqlite_settings.site and changed.lists == sqlite_settings.lists
    assert not sqlite_settings.smtp.lmtp
