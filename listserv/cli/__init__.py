# SPDX-License-Identifier: Apache-2.0
"""The `listserv` command: serve, and everything owners do on the host.

Each group lives in its own module and is added to the app here, in one
visible place. Every listing takes `--json` (an array of objects). Bad input
exits non-zero with one line on stderr; a bad configuration exits 2.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from difflib import get_close_matches
from typing import Any

import click
import typer
import typer.core
import typer.main

from listserv.acts.errors import ActError
from listserv.cli.common import CLIError, fail
from listserv.config import ConfigError

# Every command, in the order `listserv --help` shows them: (name, module,
# attribute). The attribute is a Typer group or a command function. A module
# is imported only when its command runs, so `listserv members export` does
# not first load the mail service, the web server and alembic (click's lazy
# group); `--help` loads them all to show each one's summary.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("serve", "listserv.cli.serve_cmd", "serve"),
    ("check-config", "listserv.cli.serve_cmd", "check_config"),
    ("web", "listserv.cli.web_cmd", "web"),
    ("db", "listserv.cli.db_cmds", "app"),
    ("lists", "listserv.cli.lists_cmds", "app"),
    ("members", "listserv.cli.members_cmds", "app"),
    ("requests", "listserv.cli.requests_cmds", "app"),
    ("inbound", "listserv.cli.inbound_cmds", "app"),
    ("outbox", "listserv.cli.outbox_cmds", "app"),
    ("held", "listserv.cli.held_cmds", "app"),
    ("bounces", "listserv.cli.bounces_cmds", "app"),
    ("bans", "listserv.cli.bans_cmds", "app"),
    ("owners", "listserv.cli.owners_cmds", "app"),
    ("archive", "listserv.cli.archive_cmds", "app"),
    ("digests", "listserv.cli.digests_cmds", "app"),
    ("tokens", "listserv.cli.tokens_cmds", "app"),
    ("webhooks", "listserv.cli.tokens_cmds", "webhooks_app"),
    ("audit", "listserv.cli.audit_cmds", "show_audit"),
    ("postfix-maps", "listserv.cli.postfix_cmd", "postfix_maps_command"),
)
_WHERE = {name: (module, attribute) for name, module, attribute in COMMANDS}


def load_command(name: str) -> click.Command:
    """The click command `name`, its module imported now."""
    module, attribute = _WHERE[name]
    target: Any = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        command: click.Command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(_as_callback(target))
        command = typer.main.get_command(single)
    command.name = name
    return command


def _as_callback(target: Any) -> Callable[..., Any]:
    if not callable(target):
        raise TypeError(f"{target!r} is neither a Typer group nor a command")
    return target  # type: ignore[no-any-return]


class LazyGroup(typer.core.TyperGroup):
    """The root command: names from COMMANDS, each loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, _, _ in COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _WHERE:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return click.Group.resolve_command(self, ctx, args)
        except click.UsageError as exc:
            # Suggest from every name, loaded or not.
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches:
                suggestions = ", ".join(repr(match) for match in matches)
                hint = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
                raise click.UsageError(hint, ctx=exc.ctx) from None
            raise


app = typer.Typer(
    name="listserv",
    help="Mailing lists for government communities of practice.",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """Mailing lists for government communities of practice."""


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        # The help is the answer; rich has already printed it when the message is empty.
        if exc.message:
            click.echo(exc.message, err=True)
        sys.exit(2)
    except click.UsageError as exc:
        # One line, like every other error; exit 2 as usage errors always have.
        where = exc.ctx.command_path if exc.ctx is not None else "listserv"
        # Typer and click may each append "Did you mean …?": keep one, in brackets.
        message, _, hint = exc.format_message().partition(" Did you mean ")
        message = message.rstrip(".")
        if hint:
            message += f" (did you mean {hint.split('?')[0]}?)"
        fail(f"{message}; see `{where} --help`", code=2)
    except click.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        fail(exc.format_message(), code=exc.exit_code)
    except ConfigError as exc:
        fail(f"config error: {exc}", code=2)
    except CLIError as exc:
        fail(str(exc), code=exc.code)
    except ActError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
