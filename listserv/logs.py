# SPDX-License-Identifier: Apache-2.0
"""How `listserv serve` and `listserv web` log: text or JSON, and no secrets in either.

Confirmation codes, one-click tokens, sign-in links and API tokens are bearer secrets: anyone
who reads them can act as their owner. They pass through log lines as envelope
addresses (`sm-cop-confirm+CODE@…`), subjects (`confirm CODE`) and URLs
(`/confirm/CODE`, `/unsubscribe/LIST/TOKEN`), so a filter on the handler replaces
them before any line is written, whoever logged it (aiosmtpd, uvicorn or us).

`--log-format json` is for log shippers (journald, Fluent Bit, Vector): each
record becomes one line with `time` (UTC, ISO 8601), `level`, `logger`,
`message`, and `exception` when there is one, so nothing has to parse the text
format. The levels are the same in both formats.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: What a secret looks like where it may appear, and what stays of it.
_SECRETS = (
    # confirmation codes: 32 characters of lower-case base32, anywhere
    (re.compile(r"(?i)(?<![a-z2-7])[a-z2-7]{32}(?![a-z2-7])"), "[code]"),
    # one-click tokens in URLs: /unsubscribe/<list>/<member id>.<mac>
    (re.compile(r"(/unsubscribe/[^/\s]+/)[0-9]+\.[A-Za-z0-9_-]+"), r"\1[token]"),
    # sign-in and other bearer links: /login/<token>
    (re.compile(r"(/login/)[A-Za-z0-9_-]{16,}"), r"\1[token]"),
    # API tokens and webhook signing secrets, wherever they appear
    (re.compile(r"\b(lsv_|whsec_)[A-Za-z0-9_-]{16,}"), r"\1[token]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record's message with its secrets replaced (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: str, verbose: bool) -> None:
    """The root handler: WARNING and up from libraries, INFO from listserv, secrets redacted."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JSONFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("listserv").setLevel(logging.INFO)
    quiet = logging.INFO if verbose else logging.WARNING
    logging.getLogger("mail.log").setLevel(quiet)
    logging.getLogger("listserv.web.access").setLevel(quiet)
