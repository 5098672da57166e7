# SPDX-License-Identifier: Apache-2.0
"""Reading the configuration: the TOML file and the environment, once, at start.

Input is `config/listserv.toml` (or the file named by LISTSERV_CONFIG), with
LISTSERV_DATABASE_URL overriding `[database] url`. Output is a `Settings`;
each section is validated here or in the module named for it, and the first
problem found is raised as a `ConfigError`.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from listserv.config.dkim import dkim_settings
from listserv.config.mailing_lists import list_settings
from listserv.config.paths import DEFAULT_CONFIG, PROJECT_ROOT
from listserv.config.secret import Secret, site_secret
from listserv.config.settings import (
    TRANSPORTS,
    DeliverySettings,
    LimitSettings,
    Settings,
    SiteSettings,
    SMTPSettings,
    WebSettings,
)
from listserv.config.values import (
    ConfigError,
    check_unknown,
    choice,
    get,
    port_number,
    positive,
    resolve,
    strings,
)

_ANY_HOST = frozenset({"", "0.0.0.0", "::", "*"})


def check_ports(smtp_host: str, smtp_port: int, web_host: str, web_port: int) -> None:
    """Refuse an SMTP and a web listener on the same port of the same address (0: any free)."""
    same_host = smtp_host == web_host or smtp_host in _ANY_HOST or web_host in _ANY_HOST
    if smtp_port == web_port != 0 and same_host:
        raise ConfigError(
            "web.port", f"is smtp.port too ({web_port}); the web pages need a port of their own"
        )


#: Limits whose 0 means "off"; the others must be positive.
_MAY_BE_OFF = frozenset(
    {
        "smtp_connections_per_client",
        "smtp_messages_per_client_per_minute",
        "web_tokens_per_client_per_minute",
        "staff_notice_minutes",
    }
)
_LIMIT_DEFAULTS: dict[str, int] = {
    name: value for name, value in vars(LimitSettings()).items() if isinstance(value, int)
}


def _limit(table: Mapping[str, Any], key: str, default: int) -> int:
    value = get(table, key, "limits.", int, default)
    if key in _MAY_BE_OFF and value == 0:
        return 0
    return positive(value, f"limits.{key}")


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
    """The same from an already parsed mapping; relative paths are under `base`."""
    env = os.environ if environ is None else environ
    check_unknown(
        data, {"site", "smtp", "database", "delivery", "web", "limits", "lists", "dkim"}, ""
    )
    tables: dict[str, Mapping[str, Any]] = {}
    for name in ("site", "smtp", "database", "delivery", "web", "limits", "dkim"):
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(name, "must be a table")
        tables[name] = value

    site_t = tables["site"]
    check_unknown(
        site_t,
        {
            "domain",
            "extra_domains",
            "command_address",
            "secret",
            "var_dir",
            "postmaster",
            "authserv_id",
            "admins",
        },
        "site.",
    )
    domain = get(site_t, "domain", "site.", str, "").strip().lower().rstrip(".")
    if not domain or "." not in domain or any(c in domain for c in " @\r\n"):
        raise ConfigError("site.domain", "must be a domain name such as lists.example.gov")
    var_dir = resolve(get(site_t, "var_dir", "site.", str, "var"), base)
    command_address = get(site_t, "command_address", "site.", str, "listserv").strip().lower()
    if not command_address or "@" in command_address:
        raise ConfigError("site.command_address", "must be a local part such as listserv")
    secret = site_secret(
        get(site_t, "secret", "site.", str, "").strip(), var_dir, create=create_secret
    )
    site = SiteSettings(
        domain=domain,
        extra_domains=tuple(d.lower() for d in strings(site_t, "extra_domains", "site.")),
        command_address=command_address,
        secret=secret,
        var_dir=var_dir,
        postmaster=get(site_t, "postmaster", "site.", str, f"postmaster@{domain}"),
        admins=tuple(a.lower() for a in strings(site_t, "admins", "site.")),
        authserv_id=get(site_t, "authserv_id", "site.", str, "").strip(),
    )
    if any(c in site.authserv_id for c in " ;\r\n"):
        raise ConfigError("site.authserv_id", "must be the authserv-id your MTA stamps")

    smtp_t = tables["smtp"]
    check_unknown(smtp_t, {"host", "port", "lmtp", "max_message_size", "recipient_map"}, "smtp.")
    recipient_map = get(smtp_t, "recipient_map", "smtp.", str, "")
    smtp = SMTPSettings(
        host=get(smtp_t, "host", "smtp.", str, "127.0.0.1"),
        port=port_number(get(smtp_t, "port", "smtp.", int, 8025), "smtp.port"),
        lmtp=get(smtp_t, "lmtp", "smtp.", bool, False),
        max_message_size=positive(
            get(smtp_t, "max_message_size", "smtp.", int, 10 * 1024 * 1024),
            "smtp.max_message_size",
        ),
        recipient_map=resolve(recipient_map, base) if recipient_map else None,
    )

    db_t = tables["database"]
    check_unknown(db_t, {"url"}, "database.")
    url = env.get("LISTSERV_DATABASE_URL") or get(db_t, "url", "database.", str, "")
    if not url:
        url = f"sqlite:///{var_dir / 'listserv.sqlite3'}"
    if not url.startswith(("sqlite", "postgresql")):
        raise ConfigError("database.url", "must be a sqlite:/// or postgresql:// URL")

    del_t = tables["delivery"]
    check_unknown(del_t, set(DeliverySettings.__dataclass_fields__), "delivery.")
    delivery = DeliverySettings(
        transport=choice(del_t, "transport", "delivery.", TRANSPORTS),
        maildir=resolve(get(del_t, "maildir", "delivery.", str, str(var_dir / "mail")), base),
        relay_host=get(del_t, "relay_host", "delivery.", str, "127.0.0.1"),
        relay_port=port_number(
            get(del_t, "relay_port", "delivery.", int, 25), "delivery.relay_port"
        ),
        relay_starttls=get(del_t, "relay_starttls", "delivery.", bool, False),
        relay_username=get(del_t, "relay_username", "delivery.", str, ""),
        relay_password=Secret(get(del_t, "relay_password", "delivery.", str, "")),
        connections=positive(
            get(del_t, "connections", "delivery.", int, 4), "delivery.connections"
        ),
        batch_size=positive(get(del_t, "batch_size", "delivery.", int, 500), "delivery.batch_size"),
        retry_for_hours=positive(
            get(del_t, "retry_for_hours", "delivery.", int, 120), "delivery.retry_for_hours"
        ),
        retry_initial_seconds=positive(
            get(del_t, "retry_initial_seconds", "delivery.", int, 60),
            "delivery.retry_initial_seconds",
        ),
        lease_seconds=positive(
            get(del_t, "lease_seconds", "delivery.", int, 15), "delivery.lease_seconds"
        ),
    )

    web_t = tables["web"]
    check_unknown(web_t, set(WebSettings.__dataclass_fields__), "web.")
    metrics_from = strings(web_t, "metrics_from", "web.") if "metrics_from" in web_t else None
    for network in metrics_from or ():
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError("web.metrics_from", f"{network!r} is not a network") from None
    web = WebSettings(
        host=get(web_t, "host", "web.", str, "127.0.0.1"),
        port=port_number(get(web_t, "port", "web.", int, 8080), "web.port"),
        base_url=get(web_t, "base_url", "web.", str, "http://127.0.0.1:8080").rstrip("/"),
        gov_banner=get(web_t, "gov_banner", "web.", bool, False),
        session_idle_minutes=positive(
            get(web_t, "session_idle_minutes", "web.", int, 30), "web.session_idle_minutes"
        ),
        session_hours=positive(get(web_t, "session_hours", "web.", int, 12), "web.session_hours"),
        processes=positive(get(web_t, "processes", "web.", int, 1), "web.processes"),
        **({"metrics_from": metrics_from} if metrics_from is not None else {}),
    )
    if not web.base_url.startswith(("http://", "https://")):
        raise ConfigError("web.base_url", "must start with https:// or http://")
    check_ports(smtp.host, smtp.port, web.host, web.port)

    lim_t = tables["limits"]
    check_unknown(lim_t, set(LimitSettings.__dataclass_fields__), "limits.")
    limits = LimitSettings(
        **{
            key: _limit(lim_t, key, default)
            for key, default in _LIMIT_DEFAULTS.items()
            if key in lim_t
        }
    )

    raw_lists = data.get("lists", [])
    if not isinstance(raw_lists, list):
        raise ConfigError("lists", "must be an array of tables ([[lists]])")
    lists = tuple(list_settings(raw, i) for i, raw in enumerate(raw_lists))
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
        dkim=dkim_settings(tables["dkim"], domain, base),
    )
