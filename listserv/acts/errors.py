# SPDX-License-Identifier: Apache-2.0
"""Why an act was not done: a small hierarchy every channel maps to its own answer.

The message is the sentence people read (an email reply, a CLI error line, a
page, an API problem's `detail`); the class says which kind of refusal it is,
so the API can answer 404, 403, 409 or 422 and the CLI exit non-zero, without
parsing words.
"""

from __future__ import annotations


class ActError(Exception):
    """An act refused; `str(error)` is what to tell the person."""

    def __init__(self, message: str, *, field: str = "", code: str = "") -> None:
        super().__init__(message)
        self.message = message
        #: The input the refusal is about (for a form or an API problem), if one.
        self.field = field
        #: A stable machine word for the reason (e.g. `domain-not-eligible`).
        self.code = code


class NotFound(ActError):
    """The list, member, post or request is not there (or may not be seen)."""


class Forbidden(ActError):
    """The actor may not do this on this list."""


class Conflict(ActError):
    """The state forbids it now: already a member, already decided, under legal hold."""


class Invalid(ActError):
    """The input is wrong: an ineligible address, a bad setting value, a past date."""
