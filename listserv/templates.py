# SPDX-License-Identifier: Apache-2.0
"""Jinja2 texts: every mail the service writes and every web page.

A site overrides any template by putting a file of the same name in
`<var_dir>/templates/`. Undefined variables are errors (StrictUndefined), so
a template typo fails a test instead of mailing a blank. HTML templates are
autoescaped; mail texts are not (they are text/plain).

A mail template starts with a `Subject:` line and a blank line, then the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from listserv.config import TEMPLATES_DIR


def _is_html(name: str | None) -> bool:
    return bool(name) and str(name).endswith((".html", ".html.j2", ".htm"))


@dataclass(frozen=True)
class MailText:
    subject: str
    body: str


class Templates:
    def __init__(self, override_dir: Path | None = None) -> None:
        loaders = []
        if override_dir is not None:
            loaders.append(FileSystemLoader(str(override_dir)))
        loaders.append(FileSystemLoader(str(TEMPLATES_DIR)))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            # HTML (pages, and the .html.j2 mail parts) is escaped; mail text is not.
            autoescape=_is_html,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, /, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    def render_mail(self, name: str, /, **context: Any) -> MailText:
        text = self.render(name, **context)
        first, _, body = text.partition("\n")
        if not first.lower().startswith("subject:"):
            raise ValueError(f"mail template {name} must start with a Subject: line")
        subject = " ".join(first[len("subject:") :].split())
        return MailText(subject=subject, body=body.lstrip("\n"))
