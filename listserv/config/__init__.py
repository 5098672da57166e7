# SPDX-License-Identifier: Apache-2.0
"""Configuration: one TOML file, validated once at start into frozen dataclasses.

Input is `config/listserv.toml` (or the file named by LISTSERV_CONFIG), with
LISTSERV_DATABASE_URL overriding `[database] url`. Output is a `Settings`
object that every other module receives explicitly; nothing reads the file or
the environment after start. Every problem is reported as a `ConfigError` that
names the key, so an operator sees one line saying what to fix.

Modules: `settings` (the dataclasses), `loading` (file, environment and the
site-wide sections), `mailing_lists` (one `[[lists]]` table), `dkim` (the signing
key), `secret` (the site secret), `values` (typed readers), `paths`.
"""

from listserv.config.dkim import SigningKeyError, check_private_key
from listserv.config.loading import load_settings, settings_from_mapping
from listserv.config.paths import DEFAULT_CONFIG, PROJECT_ROOT, TEMPLATES_DIR
from listserv.config.secret import EXAMPLE_SECRETS, Secret
from listserv.config.settings import (
    ARCHIVE_ACCESS,
    DELIVERY_STYLES,
    DIGEST_SCHEDULES,
    DMARC_MITIGATIONS,
    INELIGIBLE_POLICIES,
    NON_MEMBER_ACTIONS,
    NOTIFY_OWNERS,
    ORIGINAL_SENDER_HEADERS,
    REVIEW_POLICIES,
    TRANSPORTS,
    DeliverySettings,
    DKIMSettings,
    LimitSettings,
    ListSettings,
    Settings,
    SettingsChanges,
    SiteSettings,
    SMTPSettings,
    WebSettings,
    with_overrides,
)
from listserv.config.values import ConfigError

__all__ = [
    "ARCHIVE_ACCESS",
    "DEFAULT_CONFIG",
    "DELIVERY_STYLES",
    "DIGEST_SCHEDULES",
    "DMARC_MITIGATIONS",
    "EXAMPLE_SECRETS",
    "INELIGIBLE_POLICIES",
    "NON_MEMBER_ACTIONS",
    "NOTIFY_OWNERS",
    "ORIGINAL_SENDER_HEADERS",
    "PROJECT_ROOT",
    "REVIEW_POLICIES",
    "TEMPLATES_DIR",
    "TRANSPORTS",
    "ConfigError",
    "DKIMSettings",
    "DeliverySettings",
    "LimitSettings",
    "ListSettings",
    "SMTPSettings",
    "Secret",
    "Settings",
    "SettingsChanges",
    "SigningKeyError",
    "SiteSettings",
    "WebSettings",
    "check_private_key",
    "load_settings",
    "settings_from_mapping",
    "with_overrides",
]
