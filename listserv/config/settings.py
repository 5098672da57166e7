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
NOTIFY_OWNERS = ("auto", "each", "daily", "none")
ARCHIVE_ACCESS = ("members", "public", "owners")  # the first is the default
DIGEST_SCHEDULES = ("daily", "weekly")
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
    notify_owners: str = "auto"  # joins and leaves: each, daily, none; auto by size
    archive_access: str = "members"  # who reads the web archive: public, members, owners
    digest_schedule: str = "daily"  # or weekly
    digest_hour: int = 0  # UTC hour the digest goes out at
    digest_size_kb: int = 0  # a digest goes out early once its posts reach this size; 0: never
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
    #: Addresses that may run every list from the console (with a second factor).
    admins: tuple[str, ...] = ()
    #: Whose Authentication-Results header to believe ('' believes none).
    authserv_id: str = ""

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
    recipient_map: Path | None = None  # a Postfix relay_recipient_maps file kept up to date


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
    lease_seconds: int = 15  # another host takes a stopped worker's leases after this


@dataclass(frozen=True)
class DKIMSettings:
    """[dkim]: sign every copy (DKIM, RSA and optionally Ed25519) and seal posts (ARC)."""

    selector: str
    private_key: bytes = field(repr=False)
    private_key_file: Path
    domain: str  # d= for mail that is not a list's (a list's copies use its domain)
    authserv_id: str  # whose Authentication-Results the ARC seal records
    arc: bool = True
    ed25519_key: bytes | None = field(default=None, repr=False)  # a second signature (RFC 8463)
    ed25519_key_file: Path | None = None
    ed25519_selector: str = ""


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"
    gov_banner: bool = False  # the USWDS "An official website of the United States government"
    session_idle_minutes: int = 30  # a console session unused this long must sign in again
    session_hours: int = 12  # and every session ends this long after signing in
    #: Processes serving the pages and the API on the one port (SO_REUSEPORT);
    #: `listserv serve` starts the extra ones. Per-client and per-token limits
    #: are kept in each process's memory, so each meters 1/processes of them.
    processes: int = 1
    #: Client networks `/metrics` answers (others get 404).
    metrics_from: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class LimitSettings:
    """[limits]: every door's abuse limit; 0 turns a per-client limit off."""

    confirmations_per_address_per_day: int = 3
    requests_per_sender_per_hour: int = 20
    smtp_connections_per_client: int = 50  # above Postfix's 20 per destination
    smtp_messages_per_client_per_minute: int = 6000
    smtp_recipients_per_message: int = 100
    web_tokens_per_client_per_minute: int = 30  # confirm and one-click pages
    staff_notice_minutes: int = 10  # at most one held/request notice per list this often
    approved_failures_per_hour: int = 5
    api_requests_per_second: int = 20  # per API token, sustained
    api_burst: int = 100  # per API token, above the sustained rate


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
