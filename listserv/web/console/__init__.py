# SPDX-License-Identifier: Apache-2.0
"""The owners' and moderators' console under /admin: one more channel into the acts.

It does no act of its own. Every POST builds the signed-in person's `Actor`
(channel web, auth `link+totp` or `link+recovery`) and calls the act in
`listserv/acts/`; an `ActError` becomes a form error on the same page.
Pages are server-rendered, work without JavaScript, and carry the session's
CSRF token in every form.

Modules: `access` (which lists a person may see, and how far), `overview`
(/admin and a list's dashboard), `charts` (SVG charts with tables),
`held` and `message_view` (the moderation queue and a post shown safely),
`requests`, `members` and `roster_files` (the roster, CSV in and out),
`routes` (the route table and the handlers).
"""
