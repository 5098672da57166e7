# SPDX-License-Identifier: Apache-2.0
"""The validated configuration: one frozen dataclass per TOML section.

Every other module receives a `Settings` explicitly and reads only these fields;
nothing reads the file or the environment after start. The choice tuples list
the accepted values of each enumerated setting (the first is the default), and
are shared with the command line that edits list settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypedDict, Unpack

from listserv.config.secret import Secret

NON_MEMBER_ACTIONS = ("hold", "reject", "discard", "accept")
INELIGIBLE_POLICIES = ("refuse", "hold")
DMARC_MITIGATIONS = ("munge", "wrap", "none")
ORIGINAL_SENDER_HEADERS = ("reply-to", "cc")
DELIVERY_STYLES = ("personalized", "bulk")
REVIEW_POLICIES = ("owners", "members", "public")
TRANSPORTS = ("maildir", "smtp")


@dataclass(frozen=True)
class ListSettings:
    name: str
    display_name: str
    description: str = ""
    owners: tuple[str, ...] = ()
    moderators: tuple[str, ...] = ()
    join_phrases: tuple[str, ...] = ()
    leave_phrases: tuple[str, ...] = ()
    eligible_domains: tuple[str, ...] = ("gov", "mil")
    allowed_addresses: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    ineligible_policy: str = "refuse"
    confirm_expiry_hours: int = 72
    subject_prefix: str = ""
    non_member_action: str = "hold"
    moderated: bool = False
    announce_only: bool = False
    max_message_size: int = 0  # 0: the site's limit
    dmarc_mitigation: str = "munge"
    original_sender_header: str = "reply-to"
    delivery_style: str = "personalized"
    review_policy: str = "owners"
    public: bool = True
    retention_days: int = 0  # 0: keep forever
    bounce_score_threshold: float = 5.0
    bounce_stale_after_days: int = 7
    bounce_warnings: int = 3
    bounce_warning_interval_days: int = 7
    bounce_temporary_score: float = 0.5  # a permanent bounce scores 1
    bounce_probe: bool = False
    bounce_forward_unrecognised: bool = True


@dataclass(frozen=True)
class SiteSettings:
    domain: str
    extra_domains: tuple[str, ...]
    command_address: str
    secret: Secret
    var_dir: Path
    postmaster: str

    @property
    def domains(self) -> tuple[str, ...]:
        return (self.domain, *self.extra_domains)

    @property
    def site_address(self) -> str:
        return f"{self.command_address}@{self.domain}"


@dataclass(frozen=True)
class SMTPSettings:
    host: str = "127.0.0.1"
    port: int = 8025
    lmtp: bool = False
    max_message_size: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class DeliverySettings:
    transport: str = "maildir"
    maildir: Path = Path("var/mail")
    relay_host: str = "127.0.0.1"
    relay_port: int = 25
    relay_starttls: bool = False
    relay_username: str = ""
    relay_password: Secret = field(default_factory=lambda: Secret(""))
    connections: int = 4
    batch_size: int = 500
    retry_for_hours: int = 120
    retry_initial_seconds: int = 60  # first backoff after a 4xx; doubles, at most 2 hours
    lease_seconds: int = 120  # a dead worker's recipients are taken back after this


@dataclass(frozen=True)
class DKIMSettings:
    """[dkim]: sign every copy (DKIM) and seal posts (ARC) with this key."""

    selector: str
    private_key: bytes = field(repr=False)
    private_key_file: Path
    domain: str  # d= for mail that is not a list's (a list's copies use its domain)
    authserv_id: str  # whose Authentication-Results the ARC seal records
    arc: bool = True


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class LimitSettings:
    confirmations_per_address_per_day: int = 3
    requests_per_sender_per_hour: int = 20


@dataclass(frozen=True)
class Settings:
    site: SiteSettings
    smtp: SMTPSettings
    database_url: str
    delivery: DeliverySettings
    web: WebSettings
    limits: LimitSettings
    lists: tuple[ListSettings, ...]
    source: Path | None = None
    dkim: DKIMSettings | None = None

    def list_named(self, name: str) -> ListSettings | None:
        wanted = name.lower()
        return next((lst for lst in self.lists if lst.name == wanted), None)


class SettingsChanges(TypedDict, total=False):
    """The top-level fields of `Settings` that `with_overrides` may replace."""

    site: SiteSettings
    smtp: SMTPSettings
    database_url: str
    delivery: DeliverySettings
    web: WebSettings
    limits: LimitSettings
    lists: tuple[ListSettings, ...]
    source: Path | None
    dkim: DKIMSettings | None


def with_overrides(settings: Settings, **changes: Unpack[SettingsChanges]) -> Settings:
    """A copy with top-level fields replaced (used by `serve --lmtp` and tests)."""
    return replace(settings, **changes)
