# SPDX-License-Identifier: Apache-2.0
"""Decoration of an accepted list post: footer, list headers, subject prefix, DMARC From.

Job: turn the poster's message into the copy every member receives, changing only what
the list must change. :func:`decorate_post` builds the one shared copy per post;
:func:`personalize` adds the per-recipient ``List-Unsubscribe`` headers to it by a byte
splice cheap enough to run once per member.

Input: the raw bytes of an accepted post (untrusted: any bytes at all, including broken
MIME, bogus charsets, CRLF or LF line endings), a :class:`ListIdentity` (trusted site
configuration, validated on construction) and the rendered footer text and HTML
(trusted templates).

Output: bytes of a complete message. Line endings follow the input: the first line
ending of the input decides CRLF or LF, everything this module writes uses it, and the
poster's bytes keep theirs (the SMTP/LMTP layer canonicalises to CRLF on the wire).

How: the stdlib ``email`` generator re-folds headers, renames boundaries and re-encodes
bodies when it re-serialises a parsed tree, so nothing here re-serialises the poster's
message. The raw bytes are split into header fields and MIME parts by position
(lossless: the pieces concatenate back to the input), and new bytes are spliced in.
Only the text parts that receive the footer are decoded and re-encoded; every other
part, every part header we do not need to change and every preamble and epilogue is
carried over byte-for-byte. ``email`` is trusted for the small things it does well:
parsing a ``Content-Type`` value, decoding RFC 2047 words and addresses, encoding new
header values. Nothing here raises for any input bytes: a structure we cannot decorate
in place is wrapped whole in a new ``multipart/mixed`` with the footer as a second part,
and if even that fails the post becomes a ``message/rfc822`` attachment.

Pure: no I/O, no database, no asyncio.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.charset
import hashlib
import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.header import Header, decode_header, make_header
from email.message import Message
from email.utils import formataddr, getaddresses
from typing import NamedTuple

__all__ = ["ListIdentity", "decorate_post", "personalize"]

_MITIGATIONS = frozenset({"munge", "wrap", "none"})
_SENDER_HEADERS = frozenset({"reply-to", "cc"})

#: Poster headers dropped from the shared copy. List-* and Precedence are replaced by
#: ours (a poster must not choose where members unsubscribe); Sender is replaced by the
#: bounces address; Approved-style headers can carry the moderator password; read-receipt
#: requests would make every member's client mail the poster.
_REMOVE = frozenset(
    {
        "list-id",
        "list-post",
        "list-help",
        "list-subscribe",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-archive",
        "list-owner",
        "precedence",
        "sender",
        "approved",
        "approve",
        "x-approved",
        "x-approve",
        "disposition-notification-to",
        "return-receipt-to",
        "x-confirm-reading-to",
    }
)
#: Headers this module or personalize() adds; a DKIM signature covering any of them breaks.
_ADDED = frozenset(
    {
        "sender",
        "precedence",
        "x-loop",
        "list-id",
        "list-help",
        "list-owner",
        "list-subscribe",
        "list-archive",
        "list-post",
        "list-unsubscribe",
        "list-unsubscribe-post",
    }
)
#: Headers copied from the poster's message onto the new message in "wrap" mode.
_WRAP_COPY = ("to", "cc", "date", "message-id", "in-reply-to", "references")
_IDENTITY_CTES = frozenset({"7bit", "8bit", "binary", ""})
#: Codecs that keep state between characters: appending separately encoded bytes, or
#: searching their bytes for ASCII markup, is not safe, so such parts are re-encoded.
_STATEFUL = frozenset(
    {
        "iso2022_jp",
        "iso2022_jp_1",
        "iso2022_jp_2",
        "iso2022_jp_2004",
        "iso2022_jp_3",
        "iso2022_jp_ext",
        "iso2022_kr",
        "utf-7",
        "hz",
    }
)
#: Python codecs that are not mail charsets although codecs.lookup() knows them.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined", "mbcs", "oem"}
)
_MAX_DEPTH = 20
_IN_PLACE = frozenset({"text/plain", "text/html", "multipart/alternative", "multipart/mixed"})
_MAX_DISPLAY = 128

_FIELD_RE = re.compile(rb"[!-9;-~]+[ \t]*:")
_UNFOLD_RE = re.compile(rb"\r?\n(?=[ \t])")
_BODY_CLOSE_RE = re.compile(rb"</body\s*>", re.IGNORECASE)
_BODY_CLOSE_STR_RE = re.compile(r"</body\s*>", re.IGNORECASE)
_REPLY_RE = re.compile(
    r"(?:re|fwd?|aw|sv|vs|wg|antw|ref|rif|tr)\s*(?:\[\d+\]|\(\d+\))?\s*:", re.IGNORECASE
)
_DKIM_H_RE = re.compile(r"(?:^|;)\s*h\s*=\s*([^;]*)")
_ATOM_PHRASE_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/^_`{|}~ ]+")  # no '=?': not RFC 2047
_LIST_POST_MARK = b"\nList-Post: <mailto:"
_ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
_HEADER_FACTORY = policy.default.header_factory


@dataclass(frozen=True)
class ListIdentity:
    """The list as decoration sees it; trusted configuration, checked once here.

    Every value ends up in generated headers, so control characters are refused at
    construction instead of being escaped on every post.
    """

    name: str
    display_name: str
    domain: str
    subject_prefix: str
    dmarc_mitigation: str
    original_sender_header: str
    archive_url: str
    help_url: str | None = None

    def __post_init__(self) -> None:
        if self.dmarc_mitigation not in _MITIGATIONS:
            raise ValueError(f"dmarc_mitigation must be one of {sorted(_MITIGATIONS)}")
        if self.original_sender_header not in _SENDER_HEADERS:
            raise ValueError(f"original_sender_header must be one of {sorted(_SENDER_HEADERS)}")
        if not self.name or not self.domain:
            raise ValueError("list name and domain are required")
        for attr in ("name", "display_name", "domain", "subject_prefix", "archive_url"):
            if any(ord(c) < 32 or ord(c) == 127 for c in getattr(self, attr)):
                raise ValueError(f"{attr} contains a control character")
        if self.help_url is not None and any(ord(c) < 33 for c in self.help_url):
            raise ValueError("help_url contains whitespace or a control character")
        for attr in ("name", "domain"):
            value = getattr(self, attr)
            if not value.isascii() or any(c in value for c in ' <>@,;:"\\()[]'):
                raise ValueError(f"{attr} must be a plain ASCII address part")

    def _address(self, suffix: str) -> str:
        return f"{self.name.lower()}{suffix}@{self.domain.lower()}"

    @property
    def posting_address(self) -> str:
        return self._address("")

    @property
    def request_address(self) -> str:
        return self._address("-request")

    @property
    def owner_address(self) -> str:
        return self._address("-owner")

    @property
    def bounces_address(self) -> str:
        return self._address("-bounces")

    @property
    def leave_address(self) -> str:
        return self._address("-leave")

    @property
    def join_address(self) -> str:
        return self._address("-join")

    @property
    def list_id(self) -> str:
        """RFC 2919 identifier in angle brackets: ``<sm-cop.lists.example.gov>``."""
        return f"<{self.name.lower()}.{self.domain.lower()}>"

    @property
    def list_id_header(self) -> str:
        """The List-Id value with its phrase: ``SM-COP <sm-cop.lists.example.gov>``."""
        phrase = _phrase(self.display_name)
        return f"{phrase} {self.list_id}" if phrase else self.list_id


# --------------------------------------------------------------------------- raw bytes


class _Field(NamedTuple):
    """One header field exactly as received: name (lower-case) and raw bytes."""

    name: str
    raw: bytes  # "Name: value" with folded lines and line endings, as received

    @property
    def value(self) -> bytes:
        """The raw value after the colon, line endings removed and unfolded."""
        return _UNFOLD_RE.sub(b"", self.folded_value(b"\n")).strip()

    def folded_value(self, eol: bytes) -> bytes:
        """The raw value after the colon with its folding kept, line endings made ``eol``."""
        value = self.raw[self.raw.index(b":") + 1 :].rstrip(b"\r\n").replace(b"\r\n", b"\n")
        return value.replace(b"\n", eol) if eol != b"\n" else value


class _Entity(NamedTuple):
    """A message or MIME part split losslessly: ``fields + sep + body`` is the input."""

    fields: list[_Field]
    sep: bytes  # the blank line ending the header block, or b"" if there is none
    body: bytes

    def join(self, eol: bytes) -> bytes:
        sep = self.sep
        if not sep and self.body and self.fields:
            sep = eol
        fields = [f.raw for f in self.fields]
        if fields and not fields[-1].endswith(b"\n") and (sep or self.body):
            fields[-1] += eol
        return b"".join(fields) + sep + self.body


def _split_entity(data: bytes) -> _Entity:
    """Split header fields from the body by position, keeping every byte.

    The header block ends at the first empty line; a line that is neither a field nor a
    continuation also ends it (the body then starts there, as in the email package).
    """
    fields: list[_Field] = []
    pos = 0
    n = len(data)
    start = -1
    name = ""
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl + 1
        if data[pos:end] in (b"\n", b"\r\n"):
            if start >= 0:
                fields.append(_Field(name, data[start:pos]))
            return _Entity(fields, data[pos:end], data[end:])
        if data[pos : pos + 1] in (b" ", b"\t") and start >= 0:
            pos = end
            continue
        match = _FIELD_RE.match(data, pos)
        if match is None:
            break
        if start >= 0:
            fields.append(_Field(name, data[start:pos]))
        start = pos
        name = data[pos : match.end() - 1].rstrip(b" \t").decode("ascii").lower()
        pos = end
    if start >= 0:
        fields.append(_Field(name, data[start:pos]))
    return _Entity(fields, b"", data[pos:])


class _Multipart(NamedTuple):
    parts: list[tuple[int, int]]  # (start, end) of each part's content within the body
    close: int  # offset of the close-delimiter line


def _split_multipart(body: bytes, boundary: bytes) -> _Multipart | None:
    """Locate the parts of a multipart body; None unless well formed and closed.

    Each part's content excludes the line ending before the next delimiter, which RFC
    2046 assigns to the delimiter, so splicing a part never moves a delimiter.
    """
    pattern = re.compile(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$", re.MULTILINE)
    parts: list[tuple[int, int]] = []
    current = -1
    for match in pattern.finditer(body):
        line = match.start()
        if current >= 0:
            end = line - 2 if body[line - 2 : line] == b"\r\n" else line - 1
            parts.append((current, max(end, current)))
        if match.group(1):
            return _Multipart(parts, line) if parts else None
        after = match.end()
        current = after + 1 if body[after : after + 1] == b"\n" else after
    return None


def _detect_eol(data: bytes) -> bytes:
    nl = data.find(b"\n")
    return b"\r\n" if nl > 0 and data[nl - 1] == 13 else b"\n"


def _norm_eol(raw: bytes, eol: bytes) -> bytes:
    """A top-level header field with every line ending made ``eol``.

    A lone CR becomes a space: some readers (the email package among them) take it as a
    line break, which would end the header block early or inject a header. Blanks before
    the colon (obsolete syntax that the email package does not accept as a field, and
    would end the header block on) are dropped for the same reason.
    """
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b" ")
    colon = raw.find(b":")
    if colon > 0 and raw[colon - 1] in (32, 9):
        raw = raw[:colon].rstrip(b" \t") + raw[colon:]
    if eol != b"\n":
        raw = raw.replace(b"\n", eol)
    return raw if raw.endswith(eol) else raw + eol


# ---------------------------------------------------------------------- MIME headers


class _Content(NamedTuple):
    ctype: str
    charset: str | None
    cte: str
    boundary: bytes | None
    disposition: str | None
    start: str | None
    flowed: bool
    content_id: str | None


def _latin1(value: bytes) -> str:
    return value.decode("latin-1").strip()


def _content_info(fields: Sequence[_Field]) -> _Content:
    """Read the Content-* fields with the lenient compat32 parser (first one wins)."""
    msg = Message()
    content_id = None
    for f in fields:
        if f.name in ("content-type", "content-transfer-encoding", "content-disposition"):
            if f.name not in msg:
                msg[f.name] = _latin1(f.value)
        elif f.name == "content-id" and content_id is None:
            content_id = _latin1(f.value).strip("<> \t")
    boundary = None
    raw_boundary = msg.get_boundary()
    if raw_boundary:
        try:
            boundary = raw_boundary.encode("latin-1")
        except UnicodeError:
            boundary = None
    start = msg.get_param("start")
    fmt = msg.get_param("format")
    return _Content(
        ctype=msg.get_content_type(),
        charset=msg.get_content_charset(),
        cte=str(msg.get("content-transfer-encoding", "")).strip().lower(),
        boundary=boundary,
        disposition=msg.get_content_disposition(),
        start=start.strip("<> \t") if isinstance(start, str) else None,
        flowed=isinstance(fmt, str) and fmt.lower() == "flowed",
        content_id=content_id,
    )


def _replace_field(fields: list[_Field], name: str, raw: bytes) -> list[_Field]:
    """Put ``raw`` in place of the first field called ``name`` (others dropped), or add it."""
    key = name.lower()
    out: list[_Field] = []
    done = False
    for f in fields:
        if f.name == key:
            if not done:
                out.append(_Field(key, raw))
                done = True
            continue
        out.append(f)
    if not done:
        out.append(_Field(key, raw))
    return out


def _with_charset(fields: list[_Field], charset: str, eol: bytes) -> list[_Field]:
    """The same Content-Type with a new charset parameter (other parameters kept)."""
    msg = Message()
    current = next((f for f in fields if f.name == "content-type"), None)
    msg["Content-Type"] = _latin1(current.value) if current else "text/plain"
    msg.set_param("charset", charset)
    value = str(msg["Content-Type"]).encode("latin-1", "replace")
    return _replace_field(fields, "content-type", b"Content-Type: " + value + eol)


# -------------------------------------------------------------------------- context


@dataclass
class _Ctx:
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


def _footer_part(ctx: _Ctx) -> bytes:
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
        body = _qp_encode(raw, eol)
    return headers + b"Content-Disposition: inline" + eol + eol + body


# ----------------------------------------------------------------- transfer encodings


def _qp_encode(data: bytes, eol: bytes) -> bytes:
    out = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    out = out.replace(b"\r\n", b"\n")
    return out.replace(b"\n", eol) if eol != b"\n" else out


def _b64_encode(data: bytes, eol: bytes) -> bytes:
    out = base64.encodebytes(data)  # 76-character lines
    return out.replace(b"\n", eol) if eol != b"\n" else out


def _decode_cte(body: bytes, cte: str) -> bytes | None:
    if cte in _IDENTITY_CTES:
        return body
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    if cte == "base64":
        try:
            return binascii.a2b_base64(body)
        except binascii.Error:
            return None
    return None


def _encode_cte(
    new_raw: bytes, old_raw: bytes, old_body: bytes, cte: str, eol: bytes
) -> tuple[bytes, bytes | None]:
    """Encode the new content with the part's own CTE; second item: a new CTE, if any.

    Quoted-printable keeps the poster's encoded lines when the footer was only appended
    (checked by decoding); base64 is re-encoded whole; 7bit that now holds 8-bit footer
    bytes is relabelled 8bit so the poster's bytes stay as they are.
    """
    if cte == "base64":
        return _b64_encode(new_raw, eol), None
    if cte == "quoted-printable":
        if new_raw.startswith(old_raw) and old_body.endswith(b"\n"):
            candidate = old_body + _qp_encode(new_raw[len(old_raw) :], eol)
            if binascii.a2b_qp(candidate) == new_raw:
                return candidate, None
        return _qp_encode(new_raw, eol), None
    if cte in ("7bit", "") and not new_raw.isascii():
        return new_raw, b"8bit"
    return new_raw, None


# ------------------------------------------------------------------------- charsets


def _codec(charset: str) -> str | None:
    """The Python codec for a MIME charset, or None if unknown or not a text charset."""
    charset = email.charset.ALIASES.get(charset, charset)
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


def _splice_ok(codec: str) -> bool:
    """True if bytes in this charset can be searched for, and appended to, as ASCII."""
    if codec in _STATEFUL:
        return False
    try:
        return "\r\n</body>=".encode(codec) == b"\r\n</body>="
    except Exception:
        return False


def _text_eol(text: str, default: str) -> str:
    nl = text.find("\n")
    if nl < 0:
        return default
    return "\r\n" if nl > 0 and text[nl - 1] == "\r" else "\n"


# ------------------------------------------------------------------ body decoration


def _decorate_text(entity: _Entity, info: _Content, ctx: _Ctx, as_html: bool) -> _Entity | None:
    """Add the footer inside a text/plain or text/html part; None if it cannot be done.

    The part is decoded (CTE, then its declared charset, strictly). If that fails the
    poster's bytes are not touched here and None makes the caller wrap instead. The
    footer is encoded in the part's charset when possible (in HTML, characters outside
    it become character references); otherwise the part is converted to UTF-8.
    """
    raw = _decode_cte(entity.body, info.cte)
    codec = _codec(info.charset or "us-ascii")
    if raw is None or codec is None:
        return None
    try:
        text = raw.decode(codec)
    except Exception:
        return None
    eol = _text_eol(text, ctx.eol.decode())
    new_charset: str | None = None
    if as_html:
        block = ctx.html_block()
        if _splice_ok(codec):
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
            if _splice_ok(codec):
                new_raw = raw + suffix.encode(codec)
            else:
                new_raw = (text + suffix).encode(codec)
        except UnicodeError:
            new_raw, new_charset = (text + suffix).encode("utf-8"), "utf-8"
    body, new_cte = _encode_cte(new_raw, raw, entity.body, info.cte, ctx.eol)
    fields = entity.fields
    if new_charset is not None:
        fields = _with_charset(fields, new_charset, ctx.eol)
    if new_cte is not None:
        fields = _replace_field(
            fields, "content-transfer-encoding", b"Content-Transfer-Encoding: " + new_cte + ctx.eol
        )
    return _Entity(fields, entity.sep, body)


def _decorate_entity(entity: _Entity, ctx: _Ctx, depth: int) -> _Entity | None:
    """Decorate a message or part in place; None means "wrap it instead".

    text/plain and text/html get the footer inside; multipart/alternative gets it in
    every alternative; multipart/mixed gets a final inline text/plain part. Everything
    else (related, signed, encrypted, report, digest, message/*, non-text, attachments,
    malformed multiparts) is wrapped by the caller, which keeps it byte-identical.
    """
    info = _content_info(entity.fields)
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
    entity: _Entity, info: _Content, ctx: _Ctx, depth: int, only_root: bool
) -> _Entity | None:
    """Decorate each text alternative, or (multipart/related) only the root part.

    All or nothing: if any text alternative cannot take the footer, the whole
    alternative is left alone and wrapped, so readers never see it in only one view.
    """
    assert info.boundary is not None
    split = _split_multipart(entity.body, info.boundary)
    if split is None:
        return None
    body = entity.body
    candidates = list(enumerate(split.parts))
    if only_root:
        root = 0
        if info.start:
            for i, (start, end) in enumerate(split.parts):
                if _content_info(_split_entity(body[start:end]).fields).content_id == info.start:
                    root = i
                    break
        candidates = [candidates[root]]
    pieces: list[bytes] = []
    last = 0
    changed = 0
    for _, (start, end) in candidates:
        child = _split_entity(body[start:end])
        child_info = _content_info(child.fields)
        if child_info.ctype in _IN_PLACE:
            result = _decorate_entity(child, ctx, depth + 1)
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
    return _Entity(entity.fields, entity.sep, b"".join(pieces))


def _append_part(entity: _Entity, info: _Content, ctx: _Ctx) -> _Entity | None:
    """Insert the footer part just before the close delimiter of a multipart/mixed."""
    assert info.boundary is not None
    split = _split_multipart(entity.body, info.boundary)
    if split is None:
        return None
    at = split.close
    eol = ctx.eol
    insert = b"--" + info.boundary + eol + _footer_part(ctx) + eol
    return _Entity(entity.fields, entity.sep, entity.body[:at] + insert + entity.body[at:])


def _mime_version(eol: bytes) -> _Field:
    return _Field("mime-version", b"MIME-Version: 1.0" + eol)


def _wrap_entity(entity: _Entity, ctx: _Ctx) -> _Entity:
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
        others.append(_mime_version(eol))
    boundary = ctx.boundary
    others.append(
        _Field("content-type", b'Content-Type: multipart/mixed; boundary="' + boundary + b'"' + eol)
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
            _footer_part(ctx),
            eol + delimiter + b"--" + eol,
        ]
    )
    return _Entity(others, eol, body)


# ------------------------------------------------------------------------- headers


def _clean(text: str) -> str:
    """Control and line-separator characters become spaces (no header injection)."""
    return "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text
    ).strip()


def _header_text(value: bytes) -> str:
    """A raw header value as text: RFC 2047 words decoded, raw 8-bit taken as UTF-8."""
    text = value.decode("utf-8", "replace").strip()
    try:
        return str(_HEADER_FACTORY("subject", text))
    except Exception:
        pass
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text


def _phrase(display: str) -> str:
    """A display name as an RFC 5322 phrase: bare atoms, quoted string or RFC 2047."""
    if not display:
        return ""
    if _ATOM_PHRASE_RE.fullmatch(display):
        return display
    if display.isascii():
        return formataddr((display, "x@x"))[: -len(" <x@x>")]
    return Header(display, "utf-8").encode()


def _encode_header(name: str, text: str, eol: bytes) -> bytes:
    """A new header field; non-ASCII (or encoded-word-like) text is RFC 2047 encoded whole."""
    if text.isascii() and "=?" not in text:
        value = Header(text, "us-ascii", header_name=name).encode(linesep=eol.decode())
    else:
        value = Header(text, "utf-8", header_name=name).encode(linesep=eol.decode())
    return f"{name}: {value}".encode("ascii", "replace") + eol


def _parse_from(value: bytes) -> tuple[str, str] | None:
    """(display name, addr-spec) of the first From address, or None if there is none."""
    text = value.decode("utf-8", "replace").strip()
    try:
        addresses = _HEADER_FACTORY("from", text).addresses
        if addresses and addresses[0].username:
            return addresses[0].display_name, addresses[0].addr_spec
    except Exception:
        pass
    try:
        for display, addr in getaddresses([text]):
            if "@" in addr:
                try:
                    display = str(make_header(decode_header(display)))
                except Exception:
                    pass
                return display, addr
    except Exception:
        pass
    return None


def _munged_from(display: str, addr_spec: str, lst: ListIdentity, eol: bytes) -> bytes:
    """``"Jane Doe via SM-COP" <sm-cop@…>``; the poster's name is cleaned and bounded."""
    name = " ".join(_clean(display).split())
    if not name:
        name = addr_spec.rpartition("@")[0] or addr_spec
        name = " ".join(_clean(name).split())
    if len(name) > _MAX_DISPLAY:
        name = name[:_MAX_DISPLAY].rstrip() + "..."
    full = f"{name} via {lst.display_name}" if lst.display_name else name
    phrase = _encoded_phrase(full, eol)
    line = f"From: {phrase} <{lst.posting_address}>"
    if "\n" in phrase or len(line) > 78:
        line = f"From: {phrase}{eol.decode()} <{lst.posting_address}>"
    return line.encode("ascii") + eol


def _encoded_phrase(name: str, eol: bytes) -> str:
    """A display name (already cleaned) as a quoted string, or RFC 2047 words if non-ASCII."""
    if name.isascii():
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return Header(name, "utf-8", header_name="From").encode(linesep=eol.decode())


def _has_prefix(subject: str, prefix: str) -> bool:
    """True if the prefix starts the subject, after any Re:/Fwd:-style markers."""
    target = " ".join(prefix.split()).casefold()
    rest = subject
    for _ in range(50):
        rest = rest.lstrip()
        if " ".join(rest[: len(target) * 2 + 8].split()).casefold().startswith(target):
            return True
        match = _REPLY_RE.match(rest)
        if match is None:
            return False
        rest = rest[match.end() :]
    return False


def _new_subject(fields: Sequence[_Field], prefix: str, eol: bytes) -> bytes | None:
    """The prefixed Subject field, or None if the current one is to stay as it is."""
    if not prefix.strip():
        return None
    current = next((f for f in fields if f.name == "subject"), None)
    text = _header_text(current.value) if current is not None else ""
    if _has_prefix(text, prefix):
        return None
    text = _clean(text) or "(no subject)"
    return _encode_header("Subject", f"{prefix.strip()} {text}", eol)


def _list_headers(lst: ListIdentity, eol: bytes) -> list[bytes]:
    """Sender, Precedence, X-Loop and the RFC 2369/2919 headers; List-Post comes last."""
    help_value = f"<mailto:{lst.request_address}?subject=help>"
    if lst.help_url:
        help_value += f", <{lst.help_url}>"
    lines = [
        f"Sender: {lst.bounces_address}",
        "Precedence: list",
        f"X-Loop: {lst.posting_address}",
        f"List-Id: {lst.list_id_header}",
        f"List-Help: {help_value}",
        f"List-Owner: <mailto:{lst.owner_address}>",
        f"List-Subscribe: <mailto:{lst.join_address}>",
        f"List-Archive: <{lst.archive_url}>",
        f"List-Post: <mailto:{lst.posting_address}>",
    ]
    return [line.encode("utf-8") + eol for line in lines]


def _dkim_signed(f: _Field) -> set[str]:
    """The header names a DKIM-Signature's h= tag covers (lower-case)."""
    match = _DKIM_H_RE.search(_latin1(f.value))
    if match is None:
        return set()
    return {name.strip().lower() for name in match.group(1).split(":")}


def _addresses_in(value: bytes) -> set[str]:
    try:
        pairs = getaddresses([value.decode("utf-8", "replace")])
    except Exception:
        return set()
    return {addr.lower() for _, addr in pairs if addr}


def _poster_value(from_field: _Field, parsed: tuple[str, str], eol: bytes) -> bytes:
    """The poster's From value as sent (folding kept), or rebuilt if its name is unsafe.

    Copying keeps the poster's own encoding (RFC 2047 or SMTPUTF8); a display name that
    decodes to control characters (a CR/LF smuggled in an encoded word) is rebuilt clean.
    """
    display, addr_spec = parsed
    text = _header_text(from_field.value)
    if display == _clean(display) and text.strip() == _clean(text):
        return from_field.folded_value(eol).strip()
    name = " ".join(_clean(display).split())
    addr = addr_spec.encode("utf-8", "replace")
    if not name:
        return addr
    return _encoded_phrase(name, eol).encode("ascii") + b" <" + addr + b">"


def _sender_field(label: bytes, from_field: _Field, parsed: tuple[str, str], eol: bytes) -> bytes:
    """``Reply-To:``/``Cc:`` carrying the poster's From."""
    return label + b" " + _poster_value(from_field, parsed, eol) + eol


def _merge_cc(cc: _Field, from_field: _Field, parsed: tuple[str, str], eol: bytes) -> bytes:
    """The poster's Cc with the poster's From address added, unless it is already there."""
    if parsed[1].lower() in _addresses_in(cc.value):
        return cc.raw
    value = _poster_value(from_field, parsed, eol)
    return cc.raw.rstrip(b"\r\n") + b"," + eol + b" " + value + eol


def _rewrite_headers(
    fields: list[_Field], lst: ListIdentity, ctx: _Ctx, body_changed: bool
) -> list[bytes]:
    """The shared copy's header block: poster fields kept in order, ours changed/added.

    DKIM-Signature fields are dropped when the body changed or when any header they
    sign was changed, removed or added (in practice always, since the footer changes
    the body); ARC-* and everything else the poster sent stays byte-identical apart
    from line endings.
    """
    eol = ctx.eol
    touched = set(_ADDED)
    if body_changed:
        touched |= {"content-type", "content-transfer-encoding", "mime-version"}
    new_subject = _new_subject(fields, lst.subject_prefix, eol)
    from_field = next((f for f in fields if f.name == "from"), None)
    parsed = _parse_from(from_field.value) if from_field is not None else None
    munge = lst.dmarc_mitigation == "munge" and parsed is not None
    cc_mode = lst.original_sender_header == "cc"
    out: list[bytes | _Field] = []
    seen: set[str] = set()
    for f in fields:
        name = f.name
        first = name not in seen
        seen.add(name)
        if name in _REMOVE:
            touched.add(name)
        elif name == "dkim-signature":
            out.append(f)
        elif name == "subject" and new_subject is not None:
            touched.add(name)
            if first:
                out.append(new_subject)
        elif name == "from" and munge:
            assert parsed is not None
            touched.add(name)
            if first:
                out.append(_munged_from(parsed[0], parsed[1], lst, eol))
        elif name == "cc" and munge and cc_mode and first:
            assert parsed is not None and from_field is not None
            merged = _merge_cc(f, from_field, parsed, eol)
            if merged != f.raw:
                touched.add(name)
            out.append(_norm_eol(merged, eol))
        else:
            out.append(_norm_eol(f.raw, eol))
    if new_subject is not None and "subject" not in seen:
        touched.add("subject")
        out.append(new_subject)
    if munge and from_field is not None:
        target = "cc" if cc_mode else "reply-to"
        if target not in seen:
            touched.add(target)
            label = b"Cc:" if cc_mode else b"Reply-To:"
            assert parsed is not None
            out.append(_sender_field(label, from_field, parsed, eol))
    out.extend(_list_headers(lst, eol))
    result: list[bytes] = []
    for item in out:
        if isinstance(item, _Field):  # a DKIM-Signature, decided now that touched is known
            if not body_changed and not (_dkim_signed(item) & touched):
                result.append(_norm_eol(item.raw, eol))
        else:
            result.append(item)
    return result


# ---------------------------------------------------------------------------- public


def _strip_unix_from(data: bytes) -> bytes:
    """Drop an mbox "From " envelope line: it is not part of the message."""
    if data.startswith(b"From ") and _FIELD_RE.match(data) is None:
        nl = data.find(b"\n")
        return b"" if nl < 0 else data[nl + 1 :]
    return data


def _decorate(data: bytes, lst: ListIdentity, ctx: _Ctx) -> bytes:
    entity = _split_entity(data)
    body_changed = False
    if ctx.has_footer:
        body_changed = True
        try:
            result = _decorate_entity(entity, ctx, 0)
        except Exception:
            result = None
        if result is None:
            entity = _wrap_entity(entity, ctx)
        elif result.fields is not entity.fields and not any(
            f.name == "mime-version" for f in result.fields
        ):  # we added or changed Content-* fields: make them count
            entity = result._replace(fields=[*result.fields, _mime_version(ctx.eol)])
        else:
            entity = result
    headers = _rewrite_headers(entity.fields, lst, ctx, body_changed)
    return b"".join(headers) + ctx.eol + entity.body


def _wrap_message(data: bytes, lst: ListIdentity, ctx: _Ctx, parse: bool = True) -> bytes:
    """DMARC "wrap": a new message from the list with the post as message/rfc822.

    The attachment is the post byte-for-byte (its DKIM signature may still verify). To,
    Cc, Date, Message-ID, In-Reply-To and References are copied, the Subject prefixed,
    and the poster goes to Reply-To (theirs kept) or Cc like in "munge". With
    ``parse=False`` (last resort) no poster header is read at all.
    """
    eol = ctx.eol
    fields = _split_entity(data).fields if parse else []
    from_field = next((f for f in fields if f.name == "from"), None)
    parsed = _parse_from(from_field.value) if from_field is not None else None
    out: list[bytes] = []
    if parsed is not None:
        out.append(_munged_from(parsed[0], parsed[1], lst, eol))
    else:
        phrase = _phrase(lst.display_name)
        mailbox = f"{phrase} <{lst.posting_address}>" if phrase else lst.posting_address
        out.append(f"From: {mailbox}".encode("ascii", "replace") + eol)
    cc_mode = lst.original_sender_header == "cc"
    reply_to = [_norm_eol(f.raw, eol) for f in fields if f.name == "reply-to"]
    copied: dict[str, list[bytes]] = {
        name: [_norm_eol(f.raw, eol) for f in fields if f.name == name] for name in _WRAP_COPY
    }
    if parsed is not None and from_field is not None:
        if cc_mode:
            ccs = [f for f in fields if f.name == "cc"]
            if ccs:
                copied["cc"][0] = _norm_eol(_merge_cc(ccs[0], from_field, parsed, eol), eol)
            else:
                copied["cc"].append(_sender_field(b"Cc:", from_field, parsed, eol))
        elif not reply_to:
            reply_to.append(_sender_field(b"Reply-To:", from_field, parsed, eol))
    out += reply_to
    for group in copied.values():
        out += group
    subject = _new_subject(fields, lst.subject_prefix, eol)
    if subject is None:
        current = next((f for f in fields if f.name == "subject"), None)
        subject = _norm_eol(current.raw, eol) if current is not None else None
    if subject is not None:
        out.append(subject)
    boundary = ctx.boundary
    out.append(b"MIME-Version: 1.0" + eol)
    out.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"' + eol)
    out.extend(_list_headers(lst, eol))
    delimiter = b"--" + boundary
    attachment = b"Content-Type: message/rfc822" + eol + b"Content-Disposition: inline" + eol
    if not data.isascii():
        attachment += b"Content-Transfer-Encoding: 8bit" + eol
    body = [delimiter + eol, attachment, eol, data, eol]
    if ctx.has_footer:
        body += [delimiter + eol, _footer_part(ctx), eol]
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
    data = _strip_unix_from(bytes(original))
    eol = _detect_eol(data)
    ctx = _Ctx(eol, footer_text, footer_html, data)
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


def _header_bytes(text: str) -> bytes:
    if "\r" in text or "\n" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return text.encode("utf-8", "replace")


class _SplicePoint(NamedTuple):
    shared: bytes
    head: memoryview  # shared (plus a line ending if it had no header/body separator)
    cut: int  # where the header block's last line ends
    eol: bytes
    leave: bytes | None  # the -leave address derived from our List-Post line


#: The last message personalize() looked at: fan-out calls it for one shared copy many
#: times in a row, so its header end and leave address are found once. The reference
#: keeps that bytes object alive, so the identity test below cannot be fooled.
_last_splice: list[_SplicePoint] = []


def _splice_point(shared: bytes) -> _SplicePoint:
    for cached in _last_splice:
        if cached.shared is shared:
            return cached
    nl = shared.find(b"\n")
    if nl > 0 and shared[nl - 1] == 13:
        eol = b"\r\n"
        end = shared.find(b"\r\n\r\n")
    else:
        eol = b"\n"
        end = shared.find(b"\n\n")
    if end < 0:  # not from decorate_post: treat it all as headers
        head = shared if not shared or shared.endswith(b"\n") else shared + eol
        cut = len(head)
    else:
        head = shared
        cut = end + len(eol)
    leave = None
    mark = shared.rfind(_LIST_POST_MARK, 0, cut)
    if mark >= 0:
        start = mark + len(_LIST_POST_MARK)
        stop = shared.find(b">", start, cut)
        local, at, domain = shared[start:stop].rpartition(b"@")
        if at and stop > 0:
            leave = local + b"-leave@" + domain
    point = _SplicePoint(shared, memoryview(head), cut, eol, leave)
    _last_splice[:] = [point]
    return point


def personalize(
    shared: bytes,
    unsubscribe_url: str,
    extra_headers: Sequence[tuple[str, str]] = (),
    *,
    leave_address: str | None = None,
) -> bytes:
    """One member's copy: List-Unsubscribe (https and mailto) and List-Unsubscribe-Post.

    A byte splice at the end of the header block of :func:`decorate_post`'s output, no
    parsing: the header block ends at the first empty line. The mailto address is
    ``<name>-leave@<domain>``, derived from our List-Post line unless ``leave_address``
    is given. ``extra_headers`` follow (CR/LF in them become spaces). A few
    microseconds per call, mostly the final copy of the message.
    """
    point = _splice_point(shared)
    eol = point.eol
    leave = _header_bytes(leave_address) if leave_address is not None else point.leave
    value = b"<" + _header_bytes(unsubscribe_url) + b">"
    if leave is not None:
        # "List-Unsubscribe: " + value + ", <mailto:" + leave + ">" within 78 columns?
        fold = b" " if len(value) + len(leave) < 50 else eol + b" "
        value += b"," + fold + b"<mailto:" + leave + b">"
    added = b"List-Unsubscribe: " + value + eol + _ONE_CLICK + eol
    for name, text in extra_headers:
        clean_name = bytes(c for c in name.encode("ascii", "ignore") if 32 < c < 127 and c != 58)
        added += clean_name + b": " + _header_bytes(text) + eol
    head, cut = point.head, point.cut
    return b"".join((head[:cut], added, head[cut:]))
