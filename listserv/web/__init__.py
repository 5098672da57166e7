# SPDX-License-Identifier: Apache-2.0
"""The web pages: list information and join form, confirmation pages, one-click unsubscribe.

A Starlette application served by uvicorn inside `listserv serve` (or alone with
`listserv web`). It is one more channel into the same domain logic as email:
joining calls `subscriptions.request_subscribe`, confirming calls
`subscriptions.confirm`, leaving calls `roster.remove_member`, each with
`ctx.channel = "web"`. Pages are Jinja2 templates under `templates/web/`.

Modules: `app` (routes and middleware in one visible place), `listinfo`, `confirm`
and `unsubscribe` (the pages), `pages` (rendering and form reading),
`security` (headers, access log with tokens redacted, the confirmation form key,
client addresses), `server` (uvicorn in the service's event loop); `signin/`
(mailed sign-in links, the TOTP second factor, sessions and CSRF) and
`console/` (the owners' and moderators' pages under /admin).
"""

from __future__ import annotations

from listserv.web.app import create_app

__all__ = ["create_app"]
