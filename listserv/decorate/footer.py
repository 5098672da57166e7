# SPDX-License-Identifier: Apache-2.0
"""Where the FOIA footer goes: into every text part a member reads, or beside the post.

Text and HTML parts of plain, alternative and mixed messages get the footer
in place; a structure that cannot be decorated in place (signed, encrypted,
too deep, unknown) is wrapped whole in a new multipart/mixed with the footer
as a second part, so signatures still verify.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field

from listserv.decorate.encoding import (
    decode_cte,
    encode_cte,
    mail_codec,
    qp_encode,
    splice_ok,
    text_eol,
)
from listserv.decorate.entities import (
    Content,
    Entity,
    Field,
    content_info,
    replace_field,
    split_entity,
    split_multipart,
    with_charset,
)

_MAX_DEPTH = 20


_IN_PLACE = frozenset({"text/plain", "text/html", "multipart/alternative", "multipart/mixed"})


_BODY_CLOSE_RE = re.compile(rb"</body\s*>", re.IGNORECASE)


_BODY_CLOSE_STR_RE = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass
class Ctx:
    """What the decorators need besides the part itself."""

    eol: bytes
    footer_text: str
    footer_html: str
    seed: bytes
    _boundary: bytes | None = field(default=None, repr=False)

    @property
    def has_footer(self) -> bool:
        return bool(self.footer_text.strip())

    def text_lines(self, flowed: bool) -> list[str]:
        """Footer lines; trailing blanks dropped in format=flowed parts so they don't reflow."""
        text = self.footer_text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
        lines = text.split("\n")
        return [line.rstrip(" ") for line in lines] if flowed else lines

    def html_block(self) -> str:
        """The HTML footer; derived from the text footer if no HTML one was given."""
        if self.footer_html.strip():
            return self.footer_html.strip("\r\n")
        lines = self.text_lines(False)
        return "<p>" + "<br>\n".join(html.escape(line) for line in lines) + "</p>"

    @property
    def boundary(self) -> bytes:
        """A boundary derived from the post (stable output) that the post never contains."""
        if self._boundary is None:
            digest = hashlib.sha256(self.seed).hexdigest()[:32]
            candidate = f"=_listserv_{digest}".encode()
            counter = 0
            while candidate in self.seed:
                counter += 1
                candidate = f"=_listserv_{digest}_{counter}".encode()
            self._boundary = candidate
        return self._boundary


def footer_part(ctx: Ctx) -> bytes:
    """A new inline text/plain part with the text footer (7bit, or QP if non-ASCII)."""
    eol = ctx.eol
    text = eol.decode().join(ctx.text_lines(False)) + eol.decode()
    raw = text.encode("utf-8")
    if raw.isascii():
        headers = b'Content-Type: text/plain; charset="us-ascii"' + eol
        headers += b"Content-Transfer-Encoding: 7bit" + eol
        body = raw
    else:
        headers = b'Content-Type: text/plain; charset="utf-8"' + eol
        headers += b"Content-Transfer-Encoding: quoted-printable" + eol
        body = qp_encode(raw, eol)
    return headers + b"Content-Disposition: inline" + eol + eol + body


def _decorate_text(entity: Entity, info: Content, ctx: Ctx, as_html: bool) -> Entity | None:
    """Add the footer inside a text/plain or text/html part; None if it cannot be done.

    The part is decoded (CTE, then its declared charset, strictly). If that fails the
    poster's bytes are not touched here and None makes the caller wrap instead. The
    footer is encoded in the part's charset when possible (in HTML, characters outside
    it become character references); otherwise the part is converted to UTF-8.
    """
    raw = decode_cte(entity.body, info.cte)
    codec = mail_codec(info.charset or "us-ascii")
    if raw is None or codec is None:
        return None
    try:
        text = raw.decode(codec)
    except Exception:
        return None
    eol = text_eol(text, ctx.eol.decode())
    new_charset: str | None = None
    if as_html:
        block = ctx.html_block()
        if splice_ok(codec):
            matches = list(_BODY_CLOSE_RE.finditer(raw))
            if matches:
                at = matches[-1].start()
                add = (eol + block + eol).encode(codec, "xmlcharrefreplace")
                new_raw = raw[:at] + add + raw[at:]
            else:
                lead = "" if not raw or raw.endswith(b"\n") else eol
                new_raw = raw + (lead + block + eol).encode(codec, "xmlcharrefreplace")
        else:
            str_matches = list(_BODY_CLOSE_STR_RE.finditer(text))
            if str_matches:
                at = str_matches[-1].start()
                new_text = text[:at] + eol + block + eol + text[at:]
            else:
                lead = "" if not text or text.endswith("\n") else eol
                new_text = text + lead + block + eol
            try:
                new_raw = new_text.encode(codec, "xmlcharrefreplace")
            except Exception:
                new_raw, new_charset = new_text.encode("utf-8"), "utf-8"
    else:
        if not text:
            lead = ""
        elif text.endswith("\n"):
            lead = eol
        else:
            lead = eol + eol
        suffix = lead + eol.join(ctx.text_lines(info.flowed)) + eol
        try:
            if splice_ok(codec):
                new_raw = raw + suffix.encode(codec)
            else:
                new_raw = (text + suffix).encode(codec)
        except UnicodeError:
            new_raw, new_charset = (text + suffix).encode("utf-8"), "utf-8"
    body, new_cte = encode_cte(new_raw, raw, entity.body, info.cte, ctx.eol)
    fields = entity.fields
    if new_charset is not None:
        fields = with_charset(fields, new_charset, ctx.eol)
    if new_cte is not None:
        fields = replace_field(
            fields, "content-transfer-encoding", b"Content-Transfer-Encoding: " + new_cte + ctx.eol
        )
    return Entity(fields, entity.sep, body)


def decorate_entity(entity: Entity, ctx: Ctx, depth: int) -> Entity | None:
    """Decorate a message or part in place; None means "wrap it instead".

    text/plain and text/html get the footer inside; multipart/alternative gets it in
    every alternative; multipart/mixed gets a final inline text/plain part. Everything
    else (related, signed, encrypted, report, digest, message/*, non-text, attachments,
    malformed multiparts) is wrapped by the caller, which keeps it byte-identical.
    """
    info = content_info(entity.fields)
    if info.disposition == "attachment":
        return None
    if info.ctype == "text/plain":
        return _decorate_text(entity, info, ctx, as_html=False)
    if info.ctype == "text/html":
        return _decorate_text(entity, info, ctx, as_html=True)
    if depth >= _MAX_DEPTH or info.boundary is None:
        return None
    if info.ctype == "multipart/alternative":
        return _decorate_children(entity, info, ctx, depth, only_root=False)
    if info.ctype == "multipart/mixed":
        return _append_part(entity, info, ctx)
    return None


def _decorate_children(
    entity: Entity, info: Content, ctx: Ctx, depth: int, only_root: bool
) -> Entity | None:
    """Decorate each text alternative, or (multipart/related) only the root part.

    All or nothing: if any text alternative cannot take the footer, the whole
    alternative is left alone and wrapped, so readers never see it in only one view.
    """
    assert info.boundary is not None
    split = split_multipart(entity.body, info.boundary)
    if split is None:
        return None
    body = entity.body
    candidates = list(enumerate(split.parts))
    if only_root:
        root = 0
        if info.start:
            for i, (start, end) in enumerate(split.parts):
                if content_info(split_entity(body[start:end]).fields).content_id == info.start:
                    root = i
                    break
        candidates = [candidates[root]]
    pieces: list[bytes] = []
    last = 0
    changed = 0
    for _, (start, end) in candidates:
        child = split_entity(body[start:end])
        child_info = content_info(child.fields)
        if child_info.ctype in _IN_PLACE:
            result = decorate_entity(child, ctx, depth + 1)
        elif child_info.ctype == "multipart/related" and child_info.boundary is not None:
            result = _decorate_children(child, child_info, ctx, depth + 1, only_root=True)
        elif only_root:
            return None
        else:
            continue
        if result is None:
            return None
        pieces += [body[last:start], result.join(ctx.eol)]
        last = end
        changed += 1
    if not changed:
        return None
    pieces.append(body[last:])
    return Entity(entity.fields, entity.sep, b"".join(pieces))


def _append_part(entity: Entity, info: Content, ctx: Ctx) -> Entity | None:
    """Insert the footer part just before the close delimiter of a multipart/mixed."""
    assert info.boundary is not None
    split = split_multipart(entity.body, info.boundary)
    if split is None:
        return None
    at = split.close
    eol = ctx.eol
    insert = b"--" + info.boundary + eol + footer_part(ctx) + eol
    return Entity(entity.fields, entity.sep, entity.body[:at] + insert + entity.body[at:])


def mime_version(eol: bytes) -> Field:
    return Field("mime-version", b"MIME-Version: 1.0" + eol)


def wrap_entity(entity: Entity, ctx: Ctx) -> Entity:
    """Move the content into a new multipart/mixed, byte-identical, footer part second.

    The Content-* fields go with the body into the first part (so a multipart/signed
    part keeps exactly the bytes its signature covers); the top keeps the rest.
    """
    eol = ctx.eol
    content = [f.raw for f in entity.fields if f.name.startswith("content-")]
    if content and not content[-1].endswith(b"\n"):
        content[-1] += eol
    others = [f for f in entity.fields if not f.name.startswith("content-")]
    if not any(f.name == "mime-version" for f in others):
        others.append(mime_version(eol))
    boundary = ctx.boundary
    others.append(
        Field("content-type", b'Content-Type: multipart/mixed; boundary="' + boundary + b'"' + eol)
    )
    sep = entity.sep or eol
    delimiter = b"--" + boundary
    body = b"".join(
        [
            delimiter + eol,
            *content,
            sep,
            entity.body,
            eol + delimiter + eol,
            footer_part(ctx),
            eol + delimiter + b"--" + eol,
        ]
    )
    return Entity(others, eol, body)
