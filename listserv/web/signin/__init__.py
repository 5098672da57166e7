# SPDX-License-Identifier: Apache-2.0
"""Signing in to the web pages: the mailed link, the second factor, sessions and CSRF.

`visitor` reads the session cookie into a `Visitor` (who, how proved, the
CSRF token bound to the session); `pages` are the sign-in pages, calling
the acts in `acts/signin.py`; `routes` is their part of the route table.
"""
