# SPDX-License-Identifier: Apache-2.0
"""The reference page at /api/v1/docs: the OpenAPI document rendered as plain HTML, by us.

No script and no third-party CDN (the site's CSP allows neither): a table
of contents, one section per operation with its parameters, body, answers
and schemas, and one anchor per problem type, which problems' `type` URIs
point at. It is made once from the document, so it says what the API does.
"""

from __future__ import annotations

import html
import json
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from listserv.api import problems
from listserv.api.openapi import document

CSS = b"""body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
h1,h2,h3{line-height:1.2}code,pre{font:14px ui-monospace,monospace;background:#f0f0f0}
pre{padding:.5rem;overflow-x:auto}section{border-top:1px solid #ccc;margin-top:1.5rem}
.method{font-weight:bold;text-transform:uppercase;margin-right:.5rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _schema(schema: Any) -> str:
    return f"<pre>{_e(json.dumps(schema, indent=2))}</pre>"


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    out = [
        f'<section id="{_e(op["operationId"])}">',
        f'<h3><span class="method">{_e(method)}</span><code>/api/v1{_e(path)}</code></h3>',
        f"<p>{_e(op['description'])}</p>",
    ]
    if op["parameters"]:
        out.append("<table><tr><th>parameter</th><th>in</th><th>schema</th><th>about</th></tr>")
        for p in op["parameters"]:
            out.append(
                f"<tr><td><code>{_e(p['name'])}</code>{' (required)' if p['required'] else ''}"
                f"</td><td>{_e(p['in'])}</td><td><code>{_e(json.dumps(p['schema']))}</code></td>"
                f"<td>{_e(p.get('description', ''))}</td></tr>"
            )
        out.append("</table>")
    if "requestBody" in op:
        body = op["requestBody"]["content"]["application/json"]["schema"]
        out.append(f"<p>Body (application/json):</p>{_schema(body)}")
    out.append("<p>Answers:</p><ul>")
    for status, answer in op["responses"].items():
        kinds = ", ".join(answer.get("content", {})) or "no body"
        out.append(f"<li><code>{_e(status)}</code> {_e(answer['description'])} ({_e(kinds)})</li>")
    out.append("</ul></section>")
    return "\n".join(out)


@cache
def page() -> str:
    doc = document()
    toc = []
    sections = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            toc.append(
                f'<li><a href="#{_e(op["operationId"])}">{_e(method.upper())} {_e(path)}</a>'
                f" — {_e(op['summary'])}</li>"
            )
            sections.append(_operation(path, method, op))
    schemas = "\n".join(
        f'<section id="schema-{_e(name)}"><h3>{_e(name)}</h3>{_schema(schema)}</section>'
        for name, schema in doc["components"]["schemas"].items()
    )
    kinds = "\n".join(
        f'<li id="problem-{_e(slug)}"><code>{status}</code> {_e(title)}</li>'
        for status, (slug, title) in sorted(problems.KINDS.items())
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(doc["info"]["title"])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/api/v1/docs.css"></head><body>
<h1>{_e(doc["info"]["title"])} {_e(doc["info"]["version"])}</h1>
<p>{_e(doc["info"]["summary"])}</p>
<p>Every request carries <code>Authorization: Bearer &lt;token&gt;</code>. The machine-readable
description is <a href="/api/v1/openapi.json">openapi.json</a> (OpenAPI 3.1).</p>
<h2>Operations</h2><ul>{"".join(toc)}</ul>
{"".join(sections)}
<h2 id="webhooks">Webhooks</h2><p>{_e(doc["webhooks"]["event"]["post"]["description"])}
The body is an <a href="#schema-Event">Event</a>.</p>
<h2>Problems</h2><p>Errors are <code>application/problem+json</code> (RFC 9457) with
<code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code>, and
<code>field</code> naming the input a refusal is about.</p><ul>{kinds}</ul>
<h2>Schemas</h2>{schemas}
</body></html>"""


async def serve_page(request: Request) -> Response:
    return HTMLResponse(page())


async def serve_css(request: Request) -> Response:
    return Response(CSS, media_type="text/css", headers={"cache-control": "public, max-age=3600"})
