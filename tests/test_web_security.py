# SPDX-License-Identifier: Apache-2.0
"""Security headers on every response, no scripts, tokens kept out of logs, the form key."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from listserv.config import Settings
from listserv.limits import client_key
from listserv.web.security import (
    CONTENT_SECURITY_POLICY,
    Edge,
    check_confirm_form_key,
    confirm_form_key,
    is_cross_site,
    redact_path,
)
from tests.web_helpers import (
    ONE_CLICK,
    Site,
    add_member,
    open_site,
    parse_page,
    subscribe_token,
)

HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}


@pytest.fixture
async def site(sqlite_settings: Settings) -> AsyncIterator[Site]:
    async with open_site(sqlite_settings) as site:
        yield site


async def every_kind_of_response(site: Site) -> list[tuple[str, str, int]]:
    """(method, path, status) for a response of every route and status we serve."""
    token = subscribe_token(site, "jane@agency.gov")
    _, unsub = add_member(site, "reader@agency.gov")
    key = {"form_key": confirm_form_key(site.settings.site.secret.get(), token)}
    calls = [
        ("GET", "/", None),
        ("GET", "/lists", None),
        ("GET", "/lists/sm-cop", None),
        ("GET", "/lists/nope", None),
        ("GET", "/nowhere", None),
        ("GET", "/static/listserv.css", None),
        ("POST", "/lists/sm-cop", {}),  # 405
        ("POST", "/lists/sm-cop/join", {"name": ""}),  # 400
        ("POST", "/lists/sm-cop/join", {"name": "J", "address": "j@gmail.com"}),  # 422
        ("POST", "/lists/sm-cop/join", {"title": "x" * 20000}),  # 413
        ("GET", f"/confirm/{token}", None),
        ("POST", f"/confirm/{token}", {}),  # 403
        ("POST", f"/confirm/{token}", key),
        ("GET", f"/confirm/{token}", None),  # 410
        ("GET", f"/unsubscribe/sm-cop/{unsub}", None),
        ("POST", f"/unsubscribe/sm-cop/{unsub}", ONE_CLICK),
        ("GET", "/unsubscribe/sm-cop/1.xyz", None),  # 404
    ]
    seen = []
    for method, path, data in calls:
        response = await site.client.request(method, path, data=data)
        seen.append((method, path, response.status_code))
        for name, value in HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
        csp = response.headers["content-security-policy"]
        assert csp == CONTENT_SECURITY_POLICY
        if path.startswith("/static/"):
            assert "max-age" in response.headers["cache-control"]
        else:
            assert response.headers["cache-control"] == "no-store", path
        assert "server" not in response.headers
    return seen


async def test_every_response_carries_the_security_headers(site: Site) -> None:
    statuses = {status for _, _, status in await every_kind_of_response(site)}
    assert statuses >= {200, 302, 400, 403, 404, 405, 410, 413, 422}


def test_the_policy_allows_no_script_no_inline_and_no_framing() -> None:
    directives = dict(
        (d.split(" ", 1)[0], d.split(" ", 1)[1]) for d in CONTENT_SECURITY_POLICY.split("; ")
    )
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


async def test_pages_use_no_script_inline_style_or_event_handler(site: Site) -> None:
    token = subscribe_token(site, "jane@agency.gov")
    _, unsub = add_member(site, "reader@agency.gov")
    for path in ("/lists", "/lists/sm-cop", f"/confirm/{token}", f"/unsubscribe/sm-cop/{unsub}"):
        page = parse_page((await site.client.get(path)).text)
        assert page.scripts == 0 and page.inline == 0, path


async def test_a_server_error_page_carries_the_headers_too(site: Site, monkeypatch) -> None:
    from listserv.web import listinfo

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(listinfo, "lists_page", broken)
    transport = httpx.ASGITransport(app=site.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/lists")
    assert response.status_code == 500
    assert "Something went wrong" in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


async def test_the_access_log_never_contains_a_token(site: Site, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    token = subscribe_token(site, "jane@agency.gov")
    _, unsub = add_member(site, "reader@agency.gov")
    key = {"form_key": confirm_form_key(site.settings.site.secret.get(), token)}
    await site.client.get(f"/confirm/{token}")
    await site.client.post(f"/confirm/{token}", data=key)
    await site.client.get(f"/unsubscribe/sm-cop/{unsub}?utm=x")
    await site.client.post(f"/unsubscribe/sm-cop/{unsub}", data=ONE_CLICK)
    lines = [r.getMessage() for r in caplog.records if r.name == "listserv.web.access"]
    assert "GET /confirm/[token] 200" in lines[0]
    assert "POST /unsubscribe/sm-cop/[token] 200" in lines[-1]
    assert len(lines) == 4
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server_side
    for record in server_side:  # the test's own client logs its URLs; the server must not
        text = record.getMessage()
        assert token not in text and unsub not in text and key["form_key"] not in text


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/confirm/abcdefghijklmnopqrstuvwxyz234567", "/confirm/[token]"),
        ("/unsubscribe/sm-cop/12.abcDEF_-", "/unsubscribe/sm-cop/[token]"),
        ("/unsubscribe/sm-cop/12.abc/extra", "/unsubscribe/sm-cop/[token]/extra"),
        ("/lists/sm-cop", "/lists/sm-cop"),
    ],
)
def test_token_paths_are_redacted(path: str, shown: str) -> None:
    assert redact_path(path) == shown


def test_the_form_key_is_bound_to_the_token_and_the_secret() -> None:
    secret = "s" * 32
    key = confirm_form_key(secret, "a" * 32)
    assert check_confirm_form_key(secret, "a" * 32, key)
    assert not check_confirm_form_key(secret, "b" * 32, key)
    assert not check_confirm_form_key("t" * 32, "a" * 32, key)
    assert not check_confirm_form_key(secret, "a" * 32, "")
    assert len(key) == 22


@pytest.mark.parametrize(
    ("headers", "cross"),
    [
        ({}, False),
        ({"sec-fetch-site": "same-origin"}, False),
        ({"sec-fetch-site": "none"}, False),
        ({"sec-fetch-site": "same-site"}, True),
        ({"sec-fetch-site": "cross-site"}, True),
        ({"origin": "null"}, True),
        ({"origin": "https://lists.example.gov"}, False),
        ({"origin": "https://evil.example"}, True),
    ],
)
def test_cross_site_form_posts_are_recognised(headers: dict[str, str], cross: bool) -> None:
    assert is_cross_site(headers, ["https://lists.example.gov"]) is cross


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        (None, "unknown"),
    ],
)
def test_clients_are_counted_by_address_and_ipv6_by_64(host: str | None, key: str) -> None:
    assert client_key(host) == key


async def test_an_https_site_also_sends_strict_transport_security(tmp_path, sqlite_url) -> None:
    from tests.conftest import make_settings

    settings = make_settings(
        sqlite_url, tmp_path / "var", web={"base_url": "https://lists.example.gov"}
    )
    async with open_site(settings) as site:
        response = await site.client.get("/lists")
    assert response.headers["strict-transport-security"] == "max-age=31536000"


async def test_a_plain_http_site_does_not_send_strict_transport_security(site: Site) -> None:
    assert "strict-transport-security" not in (await site.client.get("/lists")).headers


async def _seen_through_edge(
    client: tuple[str, int], headers: list[tuple[bytes, bytes]], proxies: str = "127.0.0.1,::1"
) -> dict[str, object]:
    """The scope the application behind `Edge` sees, and the headers the client gets."""
    seen: dict[str, object] = {}

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.update(client=scope["client"], scheme=scope["scheme"])
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/", "scheme": "http"}
    scope.update(client=client, headers=headers)
    await Edge(app, proxies=proxies)(scope, receive, send)  # type: ignore[arg-type]
    seen["headers"] = dict(sent[0]["headers"])  # type: ignore[call-overload]
    return seen


async def test_a_trusted_proxy_names_the_client_and_scheme() -> None:
    forwarded = [(b"x-forwarded-for", b"198.51.100.7, 127.0.0.1"), (b"x-forwarded-proto", b"https")]
    seen = await _seen_through_edge(("127.0.0.1", 5000), forwarded)
    assert seen["client"] == ("198.51.100.7", 0)
    assert seen["scheme"] == "https"
    assert seen["headers"][b"cache-control"] == b"no-store"  # type: ignore[index]


async def test_anyone_else_cannot_claim_another_address() -> None:
    forwarded = [(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"https")]
    seen = await _seen_through_edge(("203.0.113.9", 5000), forwarded)
    assert seen["client"] == ("203.0.113.9", 5000)
    assert seen["scheme"] == "http"
    seen = await _seen_through_edge(("10.1.2.3", 1), forwarded, proxies="10.0.0.0/8")
    assert seen["client"] == ("198.51.100.7", 0)
