# SPDX-License-Identifier: Apache-2.0
"""The web archive: threads, search, safe display and imports of accepted posts.

`index` keeps `archive_entries` (and so the full-text index) in step with the
accepted posts; `threading` is the JWZ algorithm; `query` and `search` read
the search syntax and run it on SQLite FTS5 or PostgreSQL; `parts` and
`render` show a post without letting it run anything; `browse` answers the
pages; `access` decides who may read; `importers` bring in old archives.
"""
