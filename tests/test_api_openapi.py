# SPDX-License-Identifier: Apache-2.0
"""The OpenAPI 3.1 document and reference page, and Schemathesis against the running service.

Schemathesis generates requests from our own `openapi.json` and sends them
over real HTTP to `listserv serve` in a subprocess: no answer may be a 5xx,
and every answer must match what the document says (status, media type,
headers, schema). The run is kept short (a few examples per operation).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from openapi_spec_validator import OpenAPIV31SpecValidator
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from listserv.api import openapi
from listserv.api.routes import ENDPOINTS
from listserv.config import Settings
from tests.admin_helpers import run_cli, write_config
from tests.api_helpers import BASE, bearer, open_api
from tests.web_helpers import free_port


def test_document_is_valid_openapi_31_and_names_every_endpoint() -> None:
    doc = openapi.document()
    OpenAPIV31SpecValidator(doc).validate()
    assert doc["openapi"] == "3.1.0"
    operations = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert operations == {(e.method, e.path) for e in ENDPOINTS}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert {"401", "429"} <= set(op["responses"]), (method, path)
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert "application/problem+json" in answer["content"]
    members = doc["paths"]["/lists/{list}/members"]
    assert {p["name"] for p in members["get"]["parameters"]} >= {"role", "delivery", "q", "at"}
    assert "409" in members["post"]["responses"] and "422" in members["post"]["responses"]
    assert "412" in doc["paths"]["/lists/{list}"]["patch"]["responses"]
    event = doc["components"]["schemas"]["Event"]["properties"]["type"]["enum"]
    assert set(event) == {"member.joined", "member.left", "post.held", "post.accepted",
                          "request.created", "bounce.disabled"}  # fmt: skip
    assert "event" in doc["webhooks"]


async def test_document_and_reference_page_are_served_by_us(settings: Settings) -> None:
    async with open_api(settings) as site:
        served = await site.client.get(f"{BASE}/openapi.json")
        assert served.status_code == 200 and served.json() == openapi.document()
        page = await site.client.get(f"{BASE}/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script" not in page.text and "cdn" not in page.text.lower()
        assert 'href="/api/v1/docs.css"' in page.text
        for endpoint in ENDPOINTS:
            assert f'id="{endpoint.operation_id}"' in page.text
        assert 'id="problem-precondition-failed"' in page.text
        css = await site.client.get(f"{BASE}/docs.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


@dataclass
class LiveApi:
    url: str
    headers: dict[str, str]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"listserv serve exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("listserv serve did not open its web port")


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """`listserv serve` in its own process, on SQLite, with a site-admin token."""
    tmp = tmp_path_factory.mktemp("live")
    web_port = free_port()
    config = write_config(
        tmp / "listserv.toml",
        f"sqlite:///{tmp / 'listserv.sqlite3'}",
        tmp / "var",
        smtp={"port": free_port()},
        web={"port": web_port, "base_url": f"http://127.0.0.1:{web_port}"},
        limits={"api_requests_per_second": 10_000, "api_burst": 10_000},
    )
    created = run_cli(config, "tokens", "create", "schemathesis", "--role", "site-admin", "--json")
    assert created.code == 0, created.stderr
    token = created.json()["token"]
    env = {**os.environ, "LISTSERV_CONFIG": str(config)}
    env.pop("LISTSERV_DATABASE_URL", None)
    log = (tmp / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "listserv", "serve"], env=env, stdout=log, stderr=log, cwd=tmp
    )
    try:
        _wait_for_port(web_port, process)
        base = f"http://127.0.0.1:{web_port}"
        members = f"{base}{BASE}/lists/sm-cop/members"
        httpx.post(members, json={"address": "seed@agency.gov"}, headers=bearer(token))
        yield LiveApi(f"{base}{BASE}", bearer(token))
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
        text = Path(log.name).read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]


schema = schemathesis.openapi.from_dict(openapi.document())


@schema.parametrize()
@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    case: schemathesis.Case, live_api: LiveApi
) -> None:
    # ignored_auth drops the generated credentials but keeps ours, so it cannot apply
    # (the 401s are tested end to end in test_api_auth.py). positive_data_acceptance
    # expects every schema-valid request to succeed, but a cursor is opaque and an
    # address may be well-formed yet ineligible: those 422s are the contract.
    case.call_and_validate(
        base_url=live_api.url,
        headers=live_api.headers,
        excluded_checks=[ignored_auth, positive_data_acceptance],
    )
