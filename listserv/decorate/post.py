# SPDX-License-Identifier: Apache-2.0
"""The shared copy of an accepted post: `decorate_post`, with `DECORATORS` in order.

Job: turn the poster's message into the copy every member receives, changing
only what the list must change. Never raises for any bytes: what cannot be
decorated in place is wrapped (DMARC "wrap" mode does so on purpose), and if
even that fails the post becomes a message/rfc822 attachment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from listserv.decorate.entities import Entity, detect_eol, norm_eol, split_entity, strip_unix_from
from listserv.decorate.footer import Ctx, decorate_entity, footer_part, mime_version, wrap_entity
from listserv.decorate.headers import (
    merge_cc,
    munged_from,
    prefixed_subject,
    rewrite_headers,
    sender_field,
)
from listserv.decorate.identity import ListIdentity, list_header_lines
from listserv.decorate.phrases import display_phrase, parse_from

#: Headers copied from the poster's message onto the new message in "wrap" mode.
_WRAP_COPY = ("to", "cc", "date", "message-id", "in-reply-to", "references")


@dataclass(frozen=True)
class Draft:
    """The shared copy on its way through DECORATORS."""

    entity: Entity
    body_changed: bool = False
    header_block: bytes | None = None  # set once the headers are final


Decorator = Callable[[Draft, ListIdentity, Ctx], Draft]


def add_footer(draft: Draft, lst: ListIdentity, ctx: Ctx) -> Draft:
    """The footer into every text part a member reads, or the post wrapped beside it."""
    if not ctx.has_footer:
        return draft
    entity = draft.entity
    try:
        result = decorate_entity(entity, ctx, 0)
    except Exception:
        result = None
    if result is None:
        entity = wrap_entity(entity, ctx)
    elif result.fields is not entity.fields and not any(
        f.name == "mime-version" for f in result.fields
    ):  # we added or changed Content-* fields: make them count
        entity = result._replace(fields=[*result.fields, mime_version(ctx.eol)])
    else:
        entity = result
    return replace(draft, entity=entity, body_changed=True)


def rewrite_list_headers(draft: Draft, lst: ListIdentity, ctx: Ctx) -> Draft:
    """Subject prefix, DMARC From, the poster's list headers out and ours in."""
    lines = rewrite_headers(draft.entity.fields, lst, ctx, draft.body_changed)
    return replace(draft, header_block=b"".join(lines))


#: What a post goes through, in order: the body first, since whether it changed
#: decides which of the poster's DKIM signatures the header step keeps.
DECORATORS: tuple[Decorator, ...] = (add_footer, rewrite_list_headers)


def _decorate(data: bytes, lst: ListIdentity, ctx: Ctx) -> bytes:
    draft = Draft(split_entity(data))
    for decorator in DECORATORS:
        draft = decorator(draft, lst, ctx)
    head = draft.header_block
    if head is None:
        head = b"".join(norm_eol(f.raw, ctx.eol) for f in draft.entity.fields)
    return head + ctx.eol + draft.entity.body


def _wrap_message(data: bytes, lst: ListIdentity, ctx: Ctx, parse: bool = True) -> bytes:
    """DMARC "wrap": a new message from the list with the post as message/rfc822.

    The attachment is the post byte-for-byte (its DKIM signature may still verify). To,
    Cc, Date, Message-ID, In-Reply-To and References are copied, the Subject prefixed,
    and the poster goes to Reply-To (theirs kept) or Cc like in "munge". With
    ``parse=False`` (last resort) no poster header is read at all.
    """
    eol = ctx.eol
    fields = split_entity(data).fields if parse else []
    from_field = next((f for f in fields if f.name == "from"), None)
    parsed = parse_from(from_field.value) if from_field is not None else None
    out: list[bytes] = []
    if parsed is not None:
        out.append(munged_from(parsed[0], parsed[1], lst, eol))
    else:
        phrase = display_phrase(lst.display_name)
        mailbox = f"{phrase} <{lst.posting_address}>" if phrase else lst.posting_address
        out.append(f"From: {mailbox}".encode("ascii", "replace") + eol)
    cc_mode = lst.original_sender_header == "cc"
    reply_to = [norm_eol(f.raw, eol) for f in fields if f.name == "reply-to"]
    copied: dict[str, list[bytes]] = {
        name: [norm_eol(f.raw, eol) for f in fields if f.name == name] for name in _WRAP_COPY
    }
    if parsed is not None and from_field is not None:
        if cc_mode:
            ccs = [f for f in fields if f.name == "cc"]
            if ccs:
                copied["cc"][0] = norm_eol(merge_cc(ccs[0], from_field, parsed, eol), eol)
            else:
                copied["cc"].append(sender_field(b"Cc:", from_field, parsed, eol))
        elif not reply_to:
            reply_to.append(sender_field(b"Reply-To:", from_field, parsed, eol))
    out += reply_to
    for group in copied.values():
        out += group
    subject = prefixed_subject(fields, lst.subject_prefix, eol)
    if subject is None:
        current = next((f for f in fields if f.name == "subject"), None)
        subject = norm_eol(current.raw, eol) if current is not None else None
    if subject is not None:
        out.append(subject)
    boundary = ctx.boundary
    out.append(b"MIME-Version: 1.0" + eol)
    out.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"' + eol)
    out.extend(list_header_lines(lst, eol))
    delimiter = b"--" + boundary
    attachment = b"Content-Type: message/rfc822" + eol + b"Content-Disposition: inline" + eol
    if not data.isascii():
        attachment += b"Content-Transfer-Encoding: 8bit" + eol
    body = [delimiter + eol, attachment, eol, data, eol]
    if ctx.has_footer:
        body += [delimiter + eol, footer_part(ctx), eol]
    body.append(delimiter + b"--" + eol)
    return b"".join(out) + eol + b"".join(body)


def decorate_post(original: bytes, lst: ListIdentity, footer_text: str, footer_html: str) -> bytes:
    """The shared copy every member receives, before per-recipient headers.

    Adds the footer (see the module docstring for where), List-Id/-Help/-Owner/
    -Subscribe/-Archive/-Post, ``Precedence: list``, ``X-Loop: <posting address>``,
    ``Sender: <bounces address>``, the subject prefix once, and the DMARC From rewrite
    ("munge": From becomes "Name via List" at the posting address and the poster goes to
    Reply-To, unless they set one, or to Cc; "wrap": see :func:`_wrap_message`; "none").
    Drops DKIM signatures our changes break. Line endings follow the input's first line
    ending. The header block ends at the first empty line, so :func:`personalize` can
    find it with ``bytes.find``. Never raises for any bytes.
    """
    data = strip_unix_from(bytes(original))
    eol = detect_eol(data)
    ctx = Ctx(eol, footer_text, footer_html, data)
    try:
        if lst.dmarc_mitigation == "wrap":
            return _wrap_message(data, lst, ctx)
        return _decorate(data, lst, ctx)
    except Exception:
        pass
    try:
        return _wrap_message(data, lst, ctx)
    except Exception:
        return _wrap_message(data, lst, ctx, parse=False)
