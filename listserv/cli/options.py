# SPDX-License-Identifier: Apache-2.0
"""Option types the administration commands share: dates, list settings, flags.

Dates on the command line are ISO 8601 (`2025-03-01`, `2025-03-01T14:30`,
`2025-03-01T14:30:00-05:00`, a trailing `Z`); without an offset they are
UTC, because the database and the audit log are. A date alone means its
midnight — or, for the end of a period (`--until 2025-03-31`), the end of
that day, so a records officer's "through March 31" includes March 31.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

import typer

from listserv.cli.common import CLIError

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (an array of objects).")]
ListArgument = Annotated[str, typer.Argument(metavar="LIST", help="The list's name.")]

# What `members import` and `members sync` both take.
RosterFileArgument = Annotated[
    str, typer.Argument(metavar="FILE", help="The roster file, or - for stdin.")
]
RosterFormatOption = Annotated[
    str,
    typer.Option(
        "--format", help="auto (default), csv, plain, listserv (REVIEW output) or mailman."
    ),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Add addresses outside the eligibility rule too.")
]
WelcomeOption = Annotated[
    bool, typer.Option("--welcome", help="Mail the welcome message to each new member.")
]


def parse_when(text: str, *, end_of_day: bool = False, option: str = "date") -> datetime:
    """An ISO date or date-time as an aware UTC datetime (see the module docstring)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time(0), tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise CLIError(
            f"{option}: {text!r} is not a date (use 2025-03-01 or 2025-03-01T14:30:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
