# SPDX-License-Identifier: Apache-2.0
"""The REST API at /api/v1: one more channel into the acts, for scripts and other systems.

`routes.ENDPOINTS` is every operation in one ordered list; `app` serves it
(token, rate limit, validation, idempotency, one transaction, problems) and
`openapi` describes it from the same rows. One module per resource family:
`lists`, `members`, `moderation` (requests and held posts), `bans`,
`records` (archive, bounces, audit log, outbox), `webhooks`. Handlers parse
and present; every change is an act called with the token's `Actor`.
"""

from listserv.api.app import ApiMount, create_api

__all__ = ["ApiMount", "create_api"]
