# SPDX-License-Identifier: Apache-2.0
"""Configuration: one TOML file, validated once at start into frozen dataclasses.

Input is `config/listserv.toml` (or the file named by LISTSERV_CONFIG), with
LISTSERV_DATABASE_URL overriding `[database] url`. Output is a `Settings`
object that every other module receives explicitly; nothing reads the file or
the environment after start. Every problem is reported as a `ConfigError` that
names the key, so an operator sees one line saying what to fix.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "listserv.toml"
TEMPLATES_DIR = PROJECT_ROOT / "templates"

#: Secrets that mean "nobody set this": the service refuses to start with them.
EXAMPLE_SECRETS = frozenset({"", "change-me", "changeme", "example", "secret", "xxx"})

NON_MEMBER_ACTIONS = ("hold", "reject", "discard", "accept")
INELIGIBLE_POLICIES = ("refuse", "hold")
DMARC_MITIGATIONS = ("munge", "wrap", "none")
ORIGINAL_SENDER_HEADERS = ("reply-to", "cc")
DELIVERY_STYLES = ("personalized", "bulk")
REVIEW_POLICIES = ("owners", "members", "public")
TRANSPORTS = ("maildir", "smtp")


class ConfigError(Exception):
    """A configuration problem, named by its key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class Secret:
    """A string that does not print itself, so logs and tracebacks keep it."""

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


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


T = TypeVar("T")


def _get(table: Mapping[str, Any], key: str, where: str, kind: type[T], default: T) -> T:
    if key not in table:
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{where}{key}", "must be a whole number")
    if not isinstance(value, kind):
        names = {str: "a string", int: "a whole number", bool: "true or false", float: "a number"}
        raise ConfigError(f"{where}{key}", f"must be {names.get(kind, kind.__name__)}")
    return value


def _strings(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}{key}", "must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _choice(table: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...]) -> str:
    value = _get(table, key, where, str, choices[0]).strip().lower()
    if value not in choices:
        raise ConfigError(f"{where}{key}", f"must be one of {', '.join(choices)}; got {value!r}")
    return value


def _positive(value: int, key: str) -> int:
    if value <= 0:
        raise ConfigError(key, "must be greater than zero")
    return value


def _check_unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}{key}", "unknown key")


_LIST_KEYS = set(ListSettings.__dataclass_fields__)


def _list_settings(raw: Any, index: int, domain: str) -> ListSettings:
    where = f"lists[{index}]."
    if not isinstance(raw, dict):
        raise ConfigError(f"lists[{index}]", "must be a table")
    _check_unknown(raw, _LIST_KEYS, where)
    name = _get(raw, "name", where, str, "").strip().lower()
    if not name:
        raise ConfigError(f"{where}name", "is required")
    if not all(c.isalnum() or c in "-_." for c in name) or not name[0].isalnum():
        raise ConfigError(f"{where}name", "may hold only letters, digits, '-', '_' and '.'")
    from listserv.addresses import RESERVED_SUFFIXES

    if any(name.endswith(suffix) for suffix in RESERVED_SUFFIXES):
        raise ConfigError(f"{where}name", "must not end with a reserved suffix such as -request")
    suffixes = tuple(s.lower().lstrip(".") for s in _strings(raw, "eligible_domains", where))
    settings = ListSettings(
        name=name,
        display_name=_get(raw, "display_name", where, str, name.upper()).strip() or name.upper(),
        description=_get(raw, "description", where, str, ""),
        owners=tuple(a.lower() for a in _strings(raw, "owners", where)),
        moderators=tuple(a.lower() for a in _strings(raw, "moderators", where)),
        join_phrases=_strings(raw, "join_phrases", where),
        leave_phrases=_strings(raw, "leave_phrases", where),
        eligible_domains=suffixes if "eligible_domains" in raw else ("gov", "mil"),
        allowed_addresses=tuple(a.lower() for a in _strings(raw, "allowed_addresses", where)),
        allowed_domains=tuple(
            d.lower().lstrip(".") for d in _strings(raw, "allowed_domains", where)
        ),
        ineligible_policy=_choice(raw, "ineligible_policy", where, INELIGIBLE_POLICIES),
        confirm_expiry_hours=_positive(
            _get(raw, "confirm_expiry_hours", where, int, 72), f"{where}confirm_expiry_hours"
        ),
        subject_prefix=_get(raw, "subject_prefix", where, str, ""),
        non_member_action=_choice(raw, "non_member_action", where, NON_MEMBER_ACTIONS),
        moderated=_get(raw, "moderated", where, bool, False),
        announce_only=_get(raw, "announce_only", where, bool, False),
        max_message_size=_get(raw, "max_message_size", where, int, 0),
        dmarc_mitigation=_choice(raw, "dmarc_mitigation", where, DMARC_MITIGATIONS),
        original_sender_header=_choice(
            raw, "original_sender_header", where, ORIGINAL_SENDER_HEADERS
        ),
        delivery_style=_choice(raw, "delivery_style", where, DELIVERY_STYLES),
        review_policy=_choice(raw, "review_policy", where, REVIEW_POLICIES),
        public=_get(raw, "public", where, bool, True),
        retention_days=_get(raw, "retention_days", where, int, 0),
        bounce_score_threshold=_get(raw, "bounce_score_threshold", where, float, 5.0),
        bounce_stale_after_days=_get(raw, "bounce_stale_after_days", where, int, 7),
        bounce_warnings=_get(raw, "bounce_warnings", where, int, 3),
        bounce_warning_interval_days=_get(raw, "bounce_warning_interval_days", where, int, 7),
        bounce_temporary_score=_get(raw, "bounce_temporary_score", where, float, 0.5),
        bounce_probe=_get(raw, "bounce_probe", where, bool, False),
        bounce_forward_unrecognised=_get(raw, "bounce_forward_unrecognised", where, bool, True),
    )
    for key, addresses in (("owners", settings.owners), ("moderators", settings.moderators)):
        for address in addresses:
            if "@" not in address or any(c in address for c in "\r\n <>"):
                raise ConfigError(f"{where}{key}", f"{address!r} is not an email address")
    return settings


def _resolve(path_text: str, base: Path) -> Path:
    path = Path(path_text)
    return path if path.is_absolute() else (base / path)


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    create_secret: bool = True,
) -> Settings:
    """Read and validate the configuration; relative paths are under the project root."""
    env = os.environ if environ is None else environ
    if path is None:
        path = Path(env["LISTSERV_CONFIG"]) if env.get("LISTSERV_CONFIG") else DEFAULT_CONFIG
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("LISTSERV_CONFIG", f"no configuration file at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"is not valid TOML ({exc})") from None
    return settings_from_mapping(data, env, source=path, create_secret=create_secret)


def settings_from_mapping(
    data: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    source: Path | None = None,
    base: Path = PROJECT_ROOT,
    create_secret: bool = True,
) -> Settings:
    env = os.environ if environ is None else environ
    _check_unknown(
        data, {"site", "smtp", "database", "delivery", "web", "limits", "lists", "dkim"}, ""
    )
    tables: dict[str, Mapping[str, Any]] = {}
    for name in ("site", "smtp", "database", "delivery", "web", "limits", "dkim"):
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(name, "must be a table")
        tables[name] = value

    site_t = tables["site"]
    _check_unknown(
        site_t,
        {"domain", "extra_domains", "command_address", "secret", "var_dir", "postmaster"},
        "site.",
    )
    domain = _get(site_t, "domain", "site.", str, "").strip().lower().rstrip(".")
    if not domain or "." not in domain or any(c in domain for c in " @\r\n"):
        raise ConfigError("site.domain", "must be a domain name such as lists.example.gov")
    var_dir = _resolve(_get(site_t, "var_dir", "site.", str, "var"), base)
    command_address = _get(site_t, "command_address", "site.", str, "listserv").strip().lower()
    if not command_address or "@" in command_address:
        raise ConfigError("site.command_address", "must be a local part such as listserv")
    secret_text = _get(site_t, "secret", "site.", str, "").strip()
    if secret_text == "generate":
        secret_text = _generated_secret(var_dir, create=create_secret)
    if secret_text.lower() in EXAMPLE_SECRETS or len(secret_text) < 16:
        raise ConfigError(
            "site.secret",
            'is empty, an example value or shorter than 16 characters; set a long random value or "generate"',
        )
    site = SiteSettings(
        domain=domain,
        extra_domains=tuple(d.lower() for d in _strings(site_t, "extra_domains", "site.")),
        command_address=command_address,
        secret=Secret(secret_text),
        var_dir=var_dir,
        postmaster=_get(site_t, "postmaster", "site.", str, f"postmaster@{domain}"),
    )

    smtp_t = tables["smtp"]
    _check_unknown(smtp_t, {"host", "port", "lmtp", "max_message_size"}, "smtp.")
    smtp = SMTPSettings(
        host=_get(smtp_t, "host", "smtp.", str, "127.0.0.1"),
        port=_port(_get(smtp_t, "port", "smtp.", int, 8025), "smtp.port"),
        lmtp=_get(smtp_t, "lmtp", "smtp.", bool, False),
        max_message_size=_positive(
            _get(smtp_t, "max_message_size", "smtp.", int, 10 * 1024 * 1024),
            "smtp.max_message_size",
        ),
    )

    db_t = tables["database"]
    _check_unknown(db_t, {"url"}, "database.")
    url = env.get("LISTSERV_DATABASE_URL") or _get(db_t, "url", "database.", str, "")
    if not url:
        url = f"sqlite:///{var_dir / 'listserv.sqlite3'}"
    if not url.startswith(("sqlite", "postgresql")):
        raise ConfigError("database.url", "must be a sqlite:/// or postgresql:// URL")

    del_t = tables["delivery"]
    _check_unknown(del_t, set(DeliverySettings.__dataclass_fields__), "delivery.")
    delivery = DeliverySettings(
        transport=_choice(del_t, "transport", "delivery.", TRANSPORTS),
        maildir=_resolve(_get(del_t, "maildir", "delivery.", str, str(var_dir / "mail")), base),
        relay_host=_get(del_t, "relay_host", "delivery.", str, "127.0.0.1"),
        relay_port=_port(_get(del_t, "relay_port", "delivery.", int, 25), "delivery.relay_port"),
        relay_starttls=_get(del_t, "relay_starttls", "delivery.", bool, False),
        relay_username=_get(del_t, "relay_username", "delivery.", str, ""),
        relay_password=Secret(_get(del_t, "relay_password", "delivery.", str, "")),
        connections=_positive(
            _get(del_t, "connections", "delivery.", int, 4), "delivery.connections"
        ),
        batch_size=_positive(
            _get(del_t, "batch_size", "delivery.", int, 500), "delivery.batch_size"
        ),
        retry_for_hours=_positive(
            _get(del_t, "retry_for_hours", "delivery.", int, 120), "delivery.retry_for_hours"
        ),
        retry_initial_seconds=_positive(
            _get(del_t, "retry_initial_seconds", "delivery.", int, 60),
            "delivery.retry_initial_seconds",
        ),
        lease_seconds=_positive(
            _get(del_t, "lease_seconds", "delivery.", int, 120), "delivery.lease_seconds"
        ),
    )

    web_t = tables["web"]
    _check_unknown(web_t, {"host", "port", "base_url"}, "web.")
    web = WebSettings(
        host=_get(web_t, "host", "web.", str, "127.0.0.1"),
        port=_port(_get(web_t, "port", "web.", int, 8080), "web.port"),
        base_url=_get(web_t, "base_url", "web.", str, "http://127.0.0.1:8080").rstrip("/"),
    )
    if not web.base_url.startswith(("http://", "https://")):
        raise ConfigError("web.base_url", "must start with https:// or http://")

    lim_t = tables["limits"]
    _check_unknown(lim_t, set(LimitSettings.__dataclass_fields__), "limits.")
    limits = LimitSettings(
        confirmations_per_address_per_day=_positive(
            _get(lim_t, "confirmations_per_address_per_day", "limits.", int, 3),
            "limits.confirmations_per_address_per_day",
        ),
        requests_per_sender_per_hour=_positive(
            _get(lim_t, "requests_per_sender_per_hour", "limits.", int, 20),
            "limits.requests_per_sender_per_hour",
        ),
    )

    raw_lists = data.get("lists", [])
    if not isinstance(raw_lists, list):
        raise ConfigError("lists", "must be an array of tables ([[lists]])")
    lists = tuple(_list_settings(raw, i, domain) for i, raw in enumerate(raw_lists))
    seen: set[str] = set()
    for i, lst in enumerate(lists):
        if lst.name in seen:
            raise ConfigError(f"lists[{i}].name", f"{lst.name!r} is defined twice")
        if lst.name == command_address:
            raise ConfigError(f"lists[{i}].name", "clashes with site.command_address")
        seen.add(lst.name)
    return Settings(
        site=site,
        smtp=smtp,
        database_url=url,
        delivery=delivery,
        web=web,
        limits=limits,
        lists=lists,
        source=source,
        dkim=_dkim_settings(tables["dkim"], domain, base),
    )


def _dkim_settings(table: Mapping[str, Any], site_domain: str, base: Path) -> DKIMSettings | None:
    """The signing key, read and checked now so a bad key stops `serve` with one line."""
    if not table:
        return None
    _check_unknown(table, {"selector", "private_key_file", "domain", "authserv_id", "arc"}, "dkim.")
    selector = _get(table, "selector", "dkim.", str, "").strip()
    if not selector or not all(c.isalnum() or c in "-._" for c in selector):
        raise ConfigError("dkim.selector", "must be a DNS label such as lists2025")
    key_text = _get(table, "private_key_file", "dkim.", str, "").strip()
    if not key_text:
        raise ConfigError("dkim.private_key_file", "is required when [dkim] is set")
    key_file = _resolve(key_text, base)
    try:
        key = key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(
            "dkim.private_key_file", f"cannot read {key_file}: {exc.strerror}"
        ) from None
    from listserv.signing import SigningKeyError, check_private_key

    try:
        check_private_key(key)
    except SigningKeyError as exc:
        raise ConfigError("dkim.private_key_file", f"{key_file}: {exc}") from None
    domain = _get(table, "domain", "dkim.", str, site_domain).strip().lower().rstrip(".")
    if not domain or "." not in domain or any(c in domain for c in " @\r\n"):
        raise ConfigError("dkim.domain", "must be a domain name such as lists.example.gov")
    authserv_id = _get(table, "authserv_id", "dkim.", str, site_domain).strip()
    if not authserv_id or any(c in authserv_id for c in " ;\r\n"):
        raise ConfigError("dkim.authserv_id", "must be the authserv-id your MTA stamps")
    return DKIMSettings(
        selector=selector,
        private_key=key,
        private_key_file=key_file,
        domain=domain,
        authserv_id=authserv_id,
        arc=_get(table, "arc", "dkim.", bool, True),
    )


def _port(value: int, key: str) -> int:
    if not 0 <= value <= 65535:
        raise ConfigError(key, "must be a port number between 0 and 65535")
    return value


def _generated_secret(var_dir: Path, *, create: bool) -> str:
    """The local secret under var/, made on first run with owner-only permissions."""
    path = var_dir / "secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    if not create:
        return secrets.token_urlsafe(32)
    var_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def with_overrides(settings: Settings, **changes: Callable[[Any], Any] | Any) -> Settings:
    """A copy with top-level fields replaced (used by `serve --lmtp` and tests)."""
    from dataclasses import replace

    return replace(settings, **changes)
