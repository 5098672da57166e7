# SPDX-License-Identifier: Apache-2.0
"""Recognise bounce messages: who failed, how badly, and whether it was our fault.

Job: turn one message that arrived at a list's ``-bounces`` address into a
:class:`BounceReport` the bounce-processing stage can act on: which recipients
failed, whether each failure is permanent, temporary, merely a delay notice, or
a rejection of *our* mail on policy grounds (DMARC, reputation, content), and
whether the message was an out-of-office reply rather than a bounce at all.

Input: the raw bytes as received, any bytes at all. Nothing here does I/O,
touches the database or knows about asyncio; :func:`parse_bounce` never raises.

Output: a frozen :class:`BounceReport`. ``recognised`` is False only when
nothing could be made of the message, so the caller can keep it for the owner.

Order of work: auto-reply detection; our own RFC 3464 reading of any
``message/delivery-status`` part (flufl.bounce's DSN detector calls every
``Action: failed`` permanent, even ``Status: 4.2.2``, and drops the status and
diagnostic we need); flufl.bounce's heuristic detectors for everything that is
not a DSN (Exim, qmail, old Sendmail, Exchange...); finally the policy rule.

What it trusts: nothing. Anyone can mail the bounces address, so every header,
address and status here may be forged. The addresses are only what the message
claims; the caller ties a report to a member through the VERP address the
bounce was delivered to, and uses these addresses at most to confirm it.
"""

from __future__ import annotations

import email
import enum
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

__all__ = [
    "BounceKind",
    "BounceReport",
    "BouncedRecipient",
    "classify_smtp_reply",
    "parse_bounce",
]


class BounceKind(enum.StrEnum):
    """How a recipient failed; decides what a bounce does to a member's score."""

    PERMANENT = "permanent"  # 5.x.x: the address is dead
    TEMPORARY = "temporary"  # 4.x.x reported as a final failure (e.g. mailbox full, expired)
    DELAYED = "delayed"  # a "still trying" notice: not a bounce at all
    POLICY = "policy"  # our mail was refused (DMARC, reputation, content): never the member's fault


@dataclass(frozen=True)
class BouncedRecipient:
    """One recipient a bounce reports on, as the bounce reports it."""

    address: str
    kind: BounceKind
    status: str | None
    diagnostic: str


@dataclass(frozen=True)
class BounceReport:
    """What one message at the bounces address turned out to be."""

    recipients: tuple[BouncedRecipient, ...]
    is_auto_reply: bool
    recognised: bool

    def permanent(self) -> tuple[BouncedRecipient, ...]:
        """The recipients whose address is dead: the only ones a hard bounce counts against."""
        return tuple(r for r in self.recipients if r.kind is BounceKind.PERMANENT)


_UNRECOGNISED = BounceReport(recipients=(), is_auto_reply=False, recognised=False)
_AUTO_REPLY = BounceReport(recipients=(), is_auto_reply=True, recognised=True)

# Caps that keep a hostile or enormous message from costing more than it is worth.
_MAX_DIAGNOSTIC = 1000
_MAX_TEXT_LINES = 3000
_MAX_DEPTH = 20
_MAX_FLUFL_PARTS = 100  # per multipart shown to flufl.bounce
_MAX_FLUFL_CHARS = 512 * 1024  # of body text shown to flufl.bounce, all parts together

_DELIVERY_STATUS_TYPES = frozenset(
    {"message/delivery-status", "message/global-delivery-status", "text/delivery-status"}
)
# The returned original: skipped when looking for explanations, and hidden from flufl.bounce,
# so that a list post which itself quotes a bounce is not taken for one.
_RETURNED_MESSAGE_TYPES = frozenset(
    {
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global-headers",
    }
)

# An enhanced status code (RFC 3463) anywhere in text, not inside an IP address or version.
_ENHANCED_ANYWHERE = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?!\d)(?!\.\d)")
_ENHANCED_AT_START = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?!\d)(?!\.\d)")
# A three-digit SMTP reply code as it appears in prose ("said: 550 ...", "'550 5.1.10 ...").
_REPLY_CODE = re.compile(r"(?:^|(?<=[\s:'\"(<\[]))([245])\d\d(?=[ -]|$)")
# "550-5.1.1 " at the start of a (possibly multi-line) reply: the prefix repeated on each line.
_REPLY_PREFIX = re.compile(r"([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3})\s)?")
_DIAGNOSTIC_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")

# Security or policy status (RFC 3463 subject 7), in either class.
_POLICY_STATUS = re.compile(r"[45]\.7\.\d{1,3}$")
_POLICY_WORDS = re.compile(
    r"dmarc|\bdkim\b|\bspf\b|polic(?:y|ies)|spam|blocked|block ?list|black ?list"
    r"|reputation|content rejected|message content|unauthenticated",
    re.IGNORECASE,
)
# Statuses that name the recipient's own mailbox as the problem (bad mailbox, bad domain, not
# found, moved, disabled, full). Prose does not overrule them: a gateway called
# "spamfilter.agency.gov" saying 5.1.1 still means the address is dead.
_RECIPIENT_FAULT_DETAILS = frozenset({"1.1", "1.2", "1.3", "1.6", "1.10", "2.1", "2.2"})

_AUTO_REPLY_SUBJECT = re.compile(
    r"\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response|antwort)"
    r"|auto:|autoresponse|vacation|on leave|away from (?:the |my )?(?:office|desk)"
    r"|abwesen|réponse automatique|respuesta automática|risposta automatica)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"\s*(?:undeliver|undelivered|delivery status notification|mail delivery fail"
    r"|returned mail|failure notice|delivery failure|non-?deliver|delayed mail"
    r"|warning: message|mail system error)",
    re.IGNORECASE,
)
_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})


def parse_bounce(raw: bytes) -> BounceReport:
    """Read one message from the bounces address; never raises for any input.

    Order: auto-reply detection (a DSN is a bounce whatever its Auto-Submitted
    says); RFC 3464 delivery-status parts, read here (``Action: delayed`` gives
    DELAYED, ``relayed``/``delivered``/``expanded`` are ignored); flufl.bounce's
    detectors for non-standard formats; then the policy rule for every failure.
    """
    try:
        return _parse_bounce(raw)
    except Exception:
        # Anything the email package or a heuristic chokes on is, by definition, not understood.
        return _UNRECOGNISED


def classify_smtp_reply(code: int, message: str) -> BounceKind | None:
    """Classify a relay's reply to one recipient during our own delivery.

    5xx is PERMANENT, or POLICY by the same rule bounces use; 2xx is None (accepted);
    anything else (4xx, or a code no relay should send) is TEMPORARY, so it is retried.
    """
    if 200 <= code < 300:
        return None
    if 500 <= code < 600:
        text = _squash(message)
        status = _status_at_start(text) or _status_anywhere(text)
        return BounceKind.POLICY if _is_policy(status, text) else BounceKind.PERMANENT
    return BounceKind.TEMPORARY


def _parse_bounce(raw: bytes) -> BounceReport:
    if not isinstance(raw, bytes | bytearray | memoryview):
        return _UNRECOGNISED
    msg = email.message_from_bytes(bytes(raw), policy=compat32)
    if _is_auto_reply(msg):
        return _AUTO_REPLY
    lines = _explanatory_lines(msg)
    understood, recipients = _from_delivery_status(msg, lines)
    if not understood:
        recipients = _from_flufl(msg, lines)
        understood = bool(recipients)
    if not understood:
        return _UNRECOGNISED
    return BounceReport(
        recipients=tuple(_apply_policy(r) for r in _dedupe(recipients)),
        is_auto_reply=False,
        recognised=True,
    )


# --- auto-replies -------------------------------------------------------------------------------


def _is_auto_reply(msg: Message) -> bool:
    """Out-of-office and other responders: not bounces, and never held for the owner.

    Postfix, Exim and Gmail all put ``Auto-Submitted: auto-replied`` on their bounces,
    so the header alone cannot decide: anything that looks like a bounce is not an auto-reply.
    """
    if _report_type(msg) == "disposition-notification":
        return True  # a read receipt (RFC 8098): automatic, and nothing for the owner to do
    if _looks_like_bounce(msg):
        return False
    auto_submitted = _header(msg, "auto-submitted").lower()
    if auto_submitted.startswith(("auto-replied", "auto-notified")):
        return True
    if any(msg.get(name) is not None for name in ("x-autoreply", "x-autorespond")):
        return True
    if _header(msg, "precedence").lower() == "auto_reply":
        return True
    return bool(_AUTO_REPLY_SUBJECT.match(_subject(msg)))


def _looks_like_bounce(msg: Message) -> bool:
    """Cheap structural signs of a delivery report, checked before any auto-reply signal."""
    if msg.get("x-failed-recipients") is not None:
        return True
    if _report_type(msg) == "delivery-status":
        return True
    if any(part.get_content_type() in _DELIVERY_STATUS_TYPES for part in _parts(msg)):
        return True
    sender = parseaddr(_header(msg, "from"))[1].lower()
    if sender.partition("@")[0] in _BOUNCE_SENDERS:
        return True
    return bool(_BOUNCE_SUBJECT.match(_subject(msg)))


def _report_type(msg: Message) -> str | None:
    """The report-type of a multipart/report ("delivery-status" if it omits one), else None."""
    if msg.get_content_type() != "multipart/report":
        return None
    report_type = msg.get_param("report-type", "delivery-status")
    return report_type.lower() if isinstance(report_type, str) else "delivery-status"


# --- RFC 3464 -----------------------------------------------------------------------------------


def _from_delivery_status(msg: Message, lines: list[str]) -> tuple[bool, list[BouncedRecipient]]:
    """Read every per-recipient block of every delivery-status part.

    Returns whether any block was understood (a DSN reporting only successes is still a DSN,
    just not a bounce) and the recipients that failed or were delayed.
    """
    understood = False
    recipients: list[BouncedRecipient] = []
    for part in _parts(msg):
        if part.get_content_type() not in _DELIVERY_STATUS_TYPES:
            continue
        for block in _status_blocks(part):
            address = _block_address(block)
            if address is None:
                continue
            action = _header(block, "action").lower()
            diagnostic = _clean_diagnostic(_header(block, "diagnostic-code"))
            status = _status_at_start(_header(block, "status")) or _status_anywhere(diagnostic)
            kind = _kind_from_action(action, status, diagnostic)
            if kind is None:
                understood = understood or action.startswith(("delivered", "relayed", "expanded"))
                continue
            understood = True
            recipients.append(
                BouncedRecipient(
                    address=address,
                    kind=kind,
                    status=status,
                    diagnostic=diagnostic or _explain(lines, address),
                )
            )
    return understood, recipients


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part, however the email package left it.

    The parser splits message/delivery-status into a list of header blocks itself; other
    types (message/global-delivery-status) or encoded bodies arrive as one string.
    """
    if part.is_multipart():
        return [block for block in part.get_payload() if isinstance(block, Message)]
    text = _part_text(part)
    if text is None:
        return []
    parser = HeaderParser(policy=compat32)
    return [
        parser.parsestr(chunk.strip() + "\n")
        for chunk in re.split(r"\r?\n[ \t]*\r?\n", text)
        if chunk.strip()
    ]


def _block_address(block: Message) -> str | None:
    """Original-Recipient when usable (it is the address we sent to), else Final-Recipient.

    Final-Recipient is where the failure happened, which after aliasing or forwarding
    may be an address the list has never heard of.
    """
    for field in ("original-recipient", "final-recipient"):
        address = _address_from_field(_header(block, field))
        if address is not None:
            return address
    return None


def _address_from_field(value: str) -> str | None:
    if not value:
        return None
    addr_type, sep, rest = value.partition(";")
    if sep:
        if addr_type.strip().lower() not in ("rfc822", "utf-8"):
            return None
    else:
        rest = value  # seen in the wild: "Final-Recipient: <user@example.com>" with no type
    address = _normalise(rest)
    # Exchange's encapsulated X.500 addresses look like mail addresses but are nobody's.
    if address is None or address.upper().startswith(("IMCEAEX-", "IMCEAX400-")):
        return None
    return address


def _kind_from_action(action: str, status: str | None, diagnostic: str) -> BounceKind | None:
    """Action says whether it failed; only the status says whether it failed for good."""
    if action.startswith("delayed"):
        return BounceKind.DELAYED
    # "error" is opensmtpd's non-standard spelling of "failed".
    if action.startswith(("fail", "error")):
        return BounceKind.TEMPORARY if _is_transient(status, diagnostic) else BounceKind.PERMANENT
    if action:
        return None  # delivered, relayed, expanded: success, not a bounce
    # No Action at all (it is mandatory): fall back on the status class.
    if status is None:
        return None
    return BounceKind.TEMPORARY if status.startswith("4") else BounceKind.PERMANENT


# --- flufl.bounce -------------------------------------------------------------------------------


def _from_flufl(msg: Message, lines: list[str]) -> list[BouncedRecipient]:
    """Non-DSN formats, by flufl.bounce's detectors.

    flufl only says which addresses failed: its "temporary" set comes only from delay warnings,
    so it maps to DELAYED; for its permanent set the status, when one can be found next to
    the address in the text, separates 5.x.x from a 4.x.x that was finally given up on.
    """
    try:
        _prepare_for_flufl(msg)
        temporary, permanent = all_failures(msg)
    except Exception:
        # flufl logs a detector's exception and re-raises it; the email package itself raises
        # ValueError reading a body whose charset parameter holds a NUL.
        return []
    found: list[tuple[bytes, bool]] = [(a, False) for a in sorted(permanent)]
    found += [(a, True) for a in sorted(temporary - permanent)]
    recipients: list[BouncedRecipient] = []
    for raw_address, delayed in found:
        address = _normalise(raw_address.decode("ascii", errors="replace"))
        if address is None:
            continue
        diagnostic = _explain(lines, address)
        status = _status_anywhere(diagnostic)
        if delayed:
            kind = BounceKind.DELAYED
        elif _is_transient(status, diagnostic):
            kind = BounceKind.TEMPORARY
        else:
            kind = BounceKind.PERMANENT
        recipients.append(BouncedRecipient(address, kind, status, diagnostic))
    return recipients


def _prepare_for_flufl(msg: Message) -> None:
    """Show flufl only the notice: no returned original, no megabytes of text, a usable From."""
    _trim_for_flufl(msg, 0, [_MAX_FLUFL_CHARS])
    if not getaddresses([_header(msg, "from")]):
        # flufl's Yale detector indexes getaddresses(...)[0], which is [] for a missing From on
        # Pythons with the CVE-2023-27043 fix: it raises and no later detector runs.
        del msg["from"]
        msg["From"] = "<>"


def _trim_for_flufl(part: Message, depth: int, budget: list[int]) -> None:
    """Drop returned originals (a list post quoting a bounce is not one) and cap the text.

    flufl's SimpleMatch runs some forty patterns over every body line, which costs seconds
    on a multi-megabyte message; the notice it is looking for always comes first.
    """
    if depth > _MAX_DEPTH:
        return
    _plain_headers(part)
    payload = part.get_payload()
    if part.get_content_type() in _DELIVERY_STATUS_TYPES:
        for block in payload if isinstance(payload, list) else []:
            if isinstance(block, Message):
                _plain_headers(block)
        return
    if isinstance(payload, str):
        if len(payload) > budget[0]:
            part.set_payload(payload[: budget[0]])
        budget[0] = max(0, budget[0] - len(payload))
        return
    if not isinstance(payload, list):
        return
    kept: list[Message | str] = []
    for sub in payload[:_MAX_FLUFL_PARTS]:
        if budget[0] <= 0:
            break
        if isinstance(sub, Message) and sub.get_content_type() not in _RETURNED_MESSAGE_TYPES:
            _trim_for_flufl(sub, depth + 1, budget)
            kept.append(sub)
    part.set_payload(kept)


def _plain_headers(part: Message) -> None:
    """Make every header a str: flufl calls .lower() on headers, which for 8-bit bytes are Header."""
    items = part.items()
    if all(isinstance(value, str) for _, value in items):
        return
    for name in {name.lower() for name, _ in items}:
        del part[name]
    for name, value in items:
        part[name] = value if isinstance(value, str) else _squash(str(value))


# --- policy -------------------------------------------------------------------------------------


def _apply_policy(recipient: BouncedRecipient) -> BouncedRecipient:
    """Failures caused by our mail rather than the member's mailbox become POLICY."""
    if recipient.kind not in (BounceKind.PERMANENT, BounceKind.TEMPORARY):
        return recipient
    if _is_policy(recipient.status, recipient.diagnostic):
        return replace(recipient, kind=BounceKind.POLICY)
    return recipient


def _is_policy(status: str | None, text: str) -> bool:
    """A security/policy status (x.7.x), or policy words unless the status blames the mailbox."""
    codes = [status] if status else []
    codes += _ENHANCED_ANYWHERE.findall(text)
    if any(_POLICY_STATUS.match(code) for code in codes):
        return True
    if any(code.partition(".")[2] in _RECIPIENT_FAULT_DETAILS for code in codes):
        return False
    return bool(_POLICY_WORDS.search(text))


def _is_transient(status: str | None, text: str) -> bool:
    if status is not None:
        return status.startswith("4")
    match = _REPLY_CODE.search(text)
    return match is not None and match.group(1) == "4"


# --- text helpers -------------------------------------------------------------------------------


def _parts(msg: Message, depth: int = 0) -> Iterator[Message]:
    """Every part outside the returned original; delivery-status parts are not descended into."""
    if depth > _MAX_DEPTH:
        return
    ctype = msg.get_content_type()
    if depth > 0 and ctype in _RETURNED_MESSAGE_TYPES:
        return
    yield msg
    if ctype in _DELIVERY_STATUS_TYPES or not msg.is_multipart():
        return
    payload = msg.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                yield from _parts(sub, depth + 1)


def _explanatory_lines(msg: Message) -> list[str]:
    """The human-readable notice's lines: text/plain parts, or de-tagged HTML if that is all."""
    plain: list[str] = []
    markup: list[str] = []
    for part in _parts(msg):
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        text = _part_text(part)
        if text is None:
            continue
        if ctype == "text/html":
            text = html.unescape(re.sub(r"<br\s*/?>|</(?:p|div|tr|li)>", "\n", text, flags=re.I))
            markup.extend(re.sub(r"<[^>]*>", " ", text).splitlines())
        else:
            plain.extend(text.splitlines())
    return (plain or markup)[:_MAX_TEXT_LINES]


def _part_text(part: Message) -> str | None:
    """A leaf's body decoded by its charset, or as UTF-8 when that charset is unusable."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return None
    if not isinstance(data, bytes):
        return None
    try:
        return data.decode(part.get_content_charset() or "utf-8", errors="replace")
    except Exception:  # unknown charset, or one whose name holds a NUL
        return data.decode("utf-8", errors="replace")


def _explain(lines: list[str], address: str) -> str:
    """The notice's explanation for one address: its paragraph, from the first reply code on.

    Bounce texts put the address first and the remote server's reply in the same paragraph
    (Postfix on one line, Exim and qmail on the following ones).
    """
    needle = address.lower()
    first = ""
    for index, line in enumerate(lines):
        if needle not in line.lower():
            continue
        paragraph = [line]
        for following in lines[index + 1 : index + 12]:
            if not following.strip():
                break
            paragraph.append(following)
        for offset, candidate in enumerate(paragraph):
            if _ENHANCED_ANYWHERE.search(candidate) or _REPLY_CODE.search(candidate.strip()):
                return _truncate(_squash(" ".join(paragraph[offset:])))
        if not first:
            first = _squash(" ".join(paragraph))
    return _truncate(first)


def _clean_diagnostic(value: str) -> str:
    """A Diagnostic-Code without its type ("smtp;") or the repeated "550-5.1.1" line prefixes."""
    text = _squash(value)
    diag_type, sep, rest = text.partition(";")
    if sep and _DIAGNOSTIC_TYPE.fullmatch(diag_type.strip()):
        text = rest.strip()
    match = _REPLY_PREFIX.match(text)
    if match:
        code, enhanced = match.groups()
        prefix = re.escape(code) + r"[ -]" + (re.escape(enhanced) + r"\s" if enhanced else "")
        body = re.sub(r"(?:^|(?<=\s))" + prefix, "", text)
        text = f"{code} {enhanced} {_squash(body)}" if enhanced else f"{code} {_squash(body)}"
    return _truncate(text.strip())


def _normalise(value: str) -> str | None:
    """An addr-spec with its domain lower-cased, or None if it is not one."""
    candidate = value.strip().strip("<>").strip()
    parsed = parseaddr(candidate)[1] or candidate
    local, at, domain = parsed.rpartition("@")
    domain = domain.rstrip(".").lower()
    if not at or not local or not domain or any(ch.isspace() for ch in parsed):
        return None
    return f"{local}@{domain}"


def _status_at_start(value: str) -> str | None:
    match = _ENHANCED_AT_START.match(value)
    return match.group(1) if match else None


def _status_anywhere(value: str) -> str | None:
    match = _ENHANCED_ANYWHERE.search(value)
    return match.group(1) if match else None


def _dedupe(recipients: list[BouncedRecipient]) -> list[BouncedRecipient]:
    """One entry per address; a failure outranks a delay notice for the same address."""
    rank = {BounceKind.DELAYED: 0, BounceKind.TEMPORARY: 1}
    chosen: dict[str, BouncedRecipient] = {}
    for recipient in recipients:
        key = recipient.address.lower()
        current = chosen.get(key)
        if current is None or rank.get(recipient.kind, 2) > rank.get(current.kind, 2):
            chosen[key] = recipient
    return list(chosen.values())


def _header(msg: Message, name: str) -> str:
    """A header's value unfolded to one line, '' when absent or unreadable."""
    try:
        value = msg.get(name)
        return "" if value is None else _squash(str(value))
    except Exception:
        return ""


def _subject(msg: Message) -> str:
    """The Subject with RFC 2047 words decoded, since responders localise and encode it."""
    try:
        value = msg.get("subject")
        return "" if value is None else _squash(str(make_header(decode_header(value))))
    except Exception:
        return _header(msg, "subject")


def _squash(text: str) -> str:
    return " ".join(text.split())


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_DIAGNOSTIC else text[: _MAX_DIAGNOSTIC - 1] + "…"
