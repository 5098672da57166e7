# SPDX-License-Identifier: Apache-2.0
"""The addresses this service answers for, as a Postfix `relay_recipient_maps` file.

With it Postfix refuses an unknown address at its own RCPT (550) instead of
accepting the message, failing over LMTP and then mailing a non-delivery notice
to a sender who may be forged. Every list address with every suffix is listed,
and the site command address on each site domain; `+extension` addresses
(`-confirm+CODE`, `-bounces+…`) match when Postfix has `recipient_delimiter = +`.
The file is rewritten only when its contents change, atomically, so Postfix
never reads half of one; the periodic job keeps it in step with lists created
or deleted on any host.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv.addresses import SUFFIXES, list_address
from listserv.config import Settings
from listserv.context import Context
from listserv.models import MailingList


def recipient_lines(session: Session, settings: Settings) -> list[str]:
    """`address OK` for every address served, sorted, one per line."""
    addresses = {f"{settings.site.command_address}@{domain}" for domain in settings.site.domains}
    for name, domain in session.execute(select(MailingList.name, MailingList.domain)):
        addresses.update(list_address(name, domain, suffix) for suffix in SUFFIXES)
    return [f"{address} OK" for address in sorted(addresses)]


def render(lines: list[str]) -> str:
    header = "# Written by `listserv postfix-maps`: every address this list server answers for.\n"
    return header + "".join(f"{line}\n" for line in lines)


def write_if_changed(path: Path, text: str) -> bool:
    """Replace the file atomically if its text differs; whether it was written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def refresh(ctx: Context) -> int:
    """The periodic job: rewrite `[smtp] recipient_map` when the lists changed (1 if so)."""
    target = ctx.settings.smtp.recipient_map
    if target is None:
        return 0
    return int(write_if_changed(target, render(recipient_lines(ctx.session, ctx.settings))))
