# SPDX-License-Identifier: Apache-2.0
"""Configuration: validated once, errors name the key, secrets are refused when weak."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from listserv.config import ConfigError, load_settings, settings_from_mapping
from tests.conftest import shipped_config


def test_shipped_config_defines_sm_cop(tmp_path: Path) -> None:
    data = shipped_config()
    data["site"]["var_dir"] = str(tmp_path)
    settings = settings_from_mapping(data, environ={})
    assert settings.site.domain == "lists.example.gov"
    assert settings.smtp.host == "127.0.0.1" and settings.smtp.port == 8025
    assert settings.delivery.transport == "maildir"
    sm_cop = settings.list_named("SM-COP")
    assert sm_cop is not None
    assert "Join the Social Media Community" in sm_cop.join_phrases
    assert "Join #SocialGov" in sm_cop.join_phrases
    assert "Subscribe to #SocialGov" in sm_cop.join_phrases
    assert sm_cop.eligible_domains == ("gov", "mil")
    assert settings.database_url.startswith("sqlite:///")
    # The generated secret is kept under var/ with owner-only permissions.
    secret_file = tmp_path / "secret"
    assert secret_file.exists() and oct(secret_file.stat().st_mode)[-3:] == "600"
    assert settings.site.secret.get() == secret_file.read_text().strip()
    assert "**" in repr(settings.site.secret)


def test_environment_overrides_database(tmp_path: Path) -> None:
    data = shipped_config()
    data["site"]["var_dir"] = str(tmp_path)
    settings = settings_from_mapping(
        data, environ={"LISTSERV_DATABASE_URL": "postgresql://db.example/lists"}
    )
    assert settings.database_url == "postgresql://db.example/lists"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["site"].update(secret=""), "site.secret"),
        (lambda d: d["site"].update(secret="change-me"), "site.secret"),
        (lambda d: d["site"].update(domain="not a domain"), "site.domain"),
        (lambda d: d["smtp"].update(port=70000), "smtp.port"),
        (lambda d: d["smtp"].update(port="25"), "smtp.port"),
        (lambda d: d["delivery"].update(transport="carrier-pigeon"), "delivery.transport"),
        (lambda d: d["lists"][0].update(eligible_domains="gov"), "lists[0].eligible_domains"),
        (lambda d: d["lists"][0].update(name="bad name!"), "lists[0].name"),
        (lambda d: d["lists"][0].update(name="x-request"), "lists[0].name"),
        (lambda d: d["lists"][0].update(non_member_action="shrug"), "lists[0].non_member_action"),
        (lambda d: d["lists"][0].update(owners=["not-an-address"]), "lists[0].owners"),
        (lambda d: d["lists"][0].update(colour="blue"), "lists[0].colour"),
        (lambda d: d.update(lists=[d["lists"][0], d["lists"][0]]), "lists[1].name"),
        (lambda d: d["web"].update(base_url="ftp://x"), "web.base_url"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, change, key: str) -> None:
    data = shipped_config()
    data["site"]["var_dir"] = str(tmp_path)
    change(data)
    with pytest.raises(ConfigError) as error:
        settings_from_mapping(data, environ={})
    assert error.value.key == key


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no configuration file"):
        load_settings(environ={"LISTSERV_CONFIG": str(tmp_path / "nope.toml")})


def _cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "listserv", *args],
        env={"LISTSERV_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_file_exits_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[site]\ndomain = "lists.example.gov"\nsecret = ""\n')
    for command in (["check-config"], ["serve"], ["members", "list", "sm-cop"]):
        result = _cli(*command, config=config)
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "site.secret" in lines[0]


def test_invalid_toml_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[site\n")
    result = _cli("check-config", config=config)
    assert result.returncode == 2 and "not valid TOML" in result.stderr


def test_check_config_accepts_the_shipped_file(tmp_path: Path) -> None:
    data = (Path(__file__).parent.parent / "config" / "listserv.toml").read_text()
    config = tmp_path / "listserv.toml"
    config.write_text(data.replace('var_dir = "var"', f'var_dir = "{tmp_path / "var"}"'))
    result = _cli("check-config", config=config)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


@pytest.mark.parametrize("web_host", ["127.0.0.1", "0.0.0.0"])
def test_the_web_port_may_not_be_the_smtp_port(web_host: str) -> None:
    data = shipped_config()
    data["web"].update(host=web_host, port=data["smtp"]["port"])
    with pytest.raises(ConfigError, match=r"web\.port: is smtp\.port too"):
        settings_from_mapping(data, environ={})


def test_the_gov_banner_is_shipped_on_and_shown() -> None:
    assert settings_from_mapping(shipped_config(), environ={}).web.gov_banner is True
