# SPDX-License-Identifier: Apache-2.0
"""The `listserv` command: serve, and everything owners do on the host.

Each group lives in its own module and is added to the app here, in one
visible place. Every listing takes `--json` (an array of objects). Bad input
exits non-zero with one line on stderr; a bad configuration exits 2.
"""

from __future__ import annotations

import sys

import click
import typer

from listserv.acts.errors import ActError
from listserv.cli import db_cmds, inbound_cmds, lists_cmds, members_cmds, requests_cmds, serve_cmd
from listserv.cli.archive_cmds import app as archive_app
from listserv.cli.audit_cmds import show_audit
from listserv.cli.bans_cmds import app as bans_app
from listserv.cli.bounces_cmds import app as bounces_app
from listserv.cli.common import CLIError, fail
from listserv.cli.digests_cmds import app as digests_app
from listserv.cli.held_cmds import app as held_app
from listserv.cli.outbox_cmds import app as outbox_app
from listserv.cli.owners_cmds import app as owners_app
from listserv.cli.postfix_cmd import postfix_maps_command
from listserv.cli.tokens_cmds import app as tokens_app
from listserv.cli.tokens_cmds import webhooks_app
from listserv.cli.web_cmd import web as web_command
from listserv.config import ConfigError

app = typer.Typer(
    name="listserv",
    help="Mailing lists for government communities of practice.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve_cmd.serve)
app.command("check-config")(serve_cmd.check_config)
app.command("web")(web_command)
app.add_typer(db_cmds.app, name="db")
app.add_typer(lists_cmds.app, name="lists")
app.add_typer(members_cmds.app, name="members")
app.add_typer(requests_cmds.app, name="requests")
app.add_typer(inbound_cmds.app, name="inbound")
app.add_typer(outbox_app, name="outbox")
app.add_typer(held_app, name="held")
app.add_typer(bounces_app, name="bounces")
app.add_typer(bans_app, name="bans")
app.add_typer(owners_app, name="owners")
app.add_typer(archive_app, name="archive")
app.add_typer(digests_app, name="digests")
app.add_typer(tokens_app, name="tokens")
app.add_typer(webhooks_app, name="webhooks")
app.command("audit")(show_audit)
app.command("postfix-maps")(postfix_maps_command)


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except click.UsageError as exc:
        # One line, like every other error; exit 2 as usage errors always have.
        where = exc.ctx.command_path if exc.ctx is not None else "listserv"
        message = exc.format_message()
        if message.count("Did you mean") > 1:  # Typer and click both suggest
            message = message[: message.rfind(" (Did you mean")]
        message = message.rstrip(".")
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
