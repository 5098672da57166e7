# SPDX-License-Identifier: Apache-2.0
"""`listserv postfix-maps`: the addresses served, for Postfix's relay_recipient_maps."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from listserv import postfix_maps
from listserv.cli.common import CLIError, console, open_context


def postfix_maps_command(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write this file (only if it changed) instead of standard output; "
            "default: [smtp] recipient_map when it is set.",
        ),
    ] = None,
) -> None:
    """Every list address, one `address OK` per line, for relay_recipient_maps."""
    with open_context() as ctx:
        text = postfix_maps.render(postfix_maps.recipient_lines(ctx.session, ctx.settings))
        target = out or ctx.settings.smtp.recipient_map
    if target is None:
        sys.stdout.write(text)
        return
    try:
        changed = postfix_maps.write_if_changed(target, text)
    except OSError as exc:
        raise CLIError(f"cannot write {target}: {exc.strerror or exc}") from None
    lines = text.count("\n") - 1
    verb = "wrote" if changed else "unchanged:"
    console.print(f"{verb} {target} ({lines} addresses)", highlight=False)
