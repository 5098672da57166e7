# SPDX-License-Identifier: Apache-2.0
"""A held post shown to a moderator without letting it do anything.

The text part is shown as text. An HTML part is cleaned with nh3 (the
Ammonia sanitizer): no script, no event handlers, no images or other remote
content, links marked `noopener noreferrer nofollow`; its source is also
shown as escaped text, so what the sender tried to hide can be read.
Attachments are listed by name, type and size, never opened. The page's CSP
(`script-src 'none'`, `img-src 'self'`) holds even if the cleaning missed
something.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage

import nh3

#: Tags kept in a cleaned HTML body: Ammonia's defaults less anything that loads content.
HTML_TAGS = set(nh3.ALLOWED_TAGS) - {"img", "picture", "source", "video", "audio", "track"}
URL_SCHEMES = {"http", "https", "mailto"}
#: The most text shown of a part (a moderator decides on far less).
SHOWN = 200_000


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class PostView:
    headers: tuple[tuple[str, str], ...]
    text: str
    html: str  # cleaned, safe to put in the page
    html_source: str  # escaped by the template
    attachments: tuple[Attachment, ...]


def _content(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content[:SHOWN] if isinstance(content, str) else ""


def clean_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=HTML_TAGS,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def view(raw: bytes) -> PostView:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    headers = tuple(
        (name, " ".join(str(message.get(name, "")).split()))
        for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID")
        if message.get(name) is not None
    )
    plain = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    html_source = _content(html_part) if isinstance(html_part, EmailMessage) else ""
    attachments = []
    for part in message.iter_attachments():
        if not isinstance(part, EmailMessage):
            continue
        payload = part.get_payload(decode=True)
        attachments.append(
            Attachment(
                part.get_filename() or "(no name)",
                part.get_content_type(),
                len(payload) if isinstance(payload, bytes) else 0,
            )
        )
    return PostView(
        headers=headers,
        text=_content(plain) if isinstance(plain, EmailMessage) else "",
        html=clean_html(html_source) if html_source else "",
        html_source=html_source,
        attachments=tuple(attachments),
    )
