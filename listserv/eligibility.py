# SPDX-License-Identifier: Apache-2.0
"""Who may join a list: address normalisation and the domain-suffix eligibility rule.

Job: decide whether one email address (or one raw ``From`` header value) may join a
list whose rule names domain suffixes such as ``gov`` and ``mil``.
Input: untrusted text straight from mail (envelope addresses, header values) and a
trusted :class:`EligibilityRule` built from the operator's configuration.
Output: :class:`Eligible` (the normalised lookup key and ASCII domain) or
:class:`Ineligible` (a stable ``code`` plus one polite sentence for the refusal reply).
Trusts: ``email-validator`` for RFC 5322/6531 syntax, Unicode normalisation and IDNA;
nothing about the sender. Pure: no I/O, no DNS (deliverability is proven later by the
double opt-in confirmation, not here).

Codes an :class:`Ineligible` may carry: ``empty-address``, ``control-character``,
``multiple-addresses``, ``quoted-local-part``, ``ip-literal``, ``bang-path``,
``percent-routing``, ``invalid-address``, ``malformed-from``, ``display-name-mismatch``,
``non-ascii-domain``, ``domain-not-eligible``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from email import errors as email_errors

from email_validator import EmailNotValidError, validate_email

from listserv.mail_policy import POLICY

__all__ = [
    "EligibilityRule",
    "Eligible",
    "Ineligible",
    "InvalidAddress",
    "check_address",
    "check_from_header",
    "describe_rule",
    "normalise_address",
]


@dataclass(frozen=True)
class EligibilityRule:
    """A list's eligibility rule, as configured by its operator (trusted input).

    ``suffixes`` are domain suffixes without a leading dot (``"gov"``, ``"mil"``,
    or several labels such as ``"fed.us"``). ``allowed_addresses`` are exact extra
    addresses and ``allowed_domains`` extra domains (the domain itself or any
    subdomain of it); both are compared after the same normalisation as the
    address being checked, so the configuration may use any case or Unicode form.
    """

    suffixes: tuple[str, ...]
    allowed_addresses: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Eligible:
    """The address may join; ``address`` is the lookup key, ``domain`` its ASCII domain."""

    address: str
    domain: str


@dataclass(frozen=True)
class Ineligible:
    """The address may not join: a stable ``code`` for audit records and tests, and a
    ``reason`` sentence that is safe to quote in a reply (no control characters)."""

    code: str
    reason: str


class InvalidAddress(ValueError):
    """The text is not one plain, acceptable email address (message says why)."""


# Control characters (C0, DEL, C1) and the Unicode line/paragraph separators: none
# belongs in an address, and CR/LF in particular would let a value escape into new
# header lines wherever it is echoed.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What a reply must not echo: the above plus invisible format characters (zero-width
# spaces and joiners, bidi overrides that could reorder the quoted text, BOM).
_UNSHOWABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
)
# A folded header line: CRLF (or bare LF) followed by white space, which RFC 5322
# unfolding removes. Any other CR or LF in a header value is refused.
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# Something shaped like an address inside a display name ("boss@agency.gov").
_ADDRESS_LIKE = re.compile(r"[^\s<>()\[\]\",;:@]+@([^\s<>()\[\]\",;:@]+)")
# Header defects that do not make the sender ambiguous: obsolete-but-harmless syntax
# ("Jane Q. Doe" with an unquoted period) and an internationalised local part, which
# we accept (SMTPUTF8).
_HARMLESS_DEFECTS = (email_errors.ObsoleteHeaderDefect, email_errors.NonASCIILocalPartDefect)


def _validate(address: str) -> tuple[str, str]:
    """Run email-validator with every option pinned, returning (local part, ASCII domain).

    Pinned rather than its module-level defaults, which any other importer could change.
    """
    local, at, domain = address.rpartition("@")
    try:
        result = validate_email(
            f"{local}{at}{unicodedata.normalize('NFKC', domain)}",  # NFKC, then IDNA 2008
            allow_smtputf8=True,
            allow_empty_local=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            check_deliverability=False,
            test_environment=False,
            globally_deliverable=True,
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from exc
    ascii_domain = result.ascii_domain
    if not ascii_domain:  # only domain literals lack one, and those are refused above
        raise InvalidAddress("The part after the @-sign is not a domain name.")
    return result.local_part, ascii_domain.lower()


def _strip_trailing_dot(address: str) -> str:
    """Drop one trailing dot (``jane@agency.gov.``, the DNS root) that people write."""
    return address[:-1] if address.endswith(".") else address


def _precheck(address: str, list_label: str) -> Ineligible | None:
    """Refusals with a specific code, found before email-validator's generic error.

    These run on the raw text so a crafted value gets the precise explanation
    (and the precise audit code) rather than "invalid address".
    """
    shown = _shown(address)
    if not address.strip():
        return Ineligible("empty-address", f"An empty address cannot join {list_label}.")
    if _CONTROL.search(address):
        return Ineligible(
            "control-character",
            f"The address {shown} contains control characters such as line breaks, "
            f"so it cannot join {list_label}.",
        )
    if address.count("@") > 1 and re.search(r"[,;]", address) and '"' not in address:
        return Ineligible(
            "multiple-addresses",
            f"{shown} looks like several addresses; please join {list_label} with one.",
        )
    local, at, domain = address.rpartition("@")
    if at and '"' in local:
        return Ineligible(
            "quoted-local-part",
            f"Addresses with a quoted part before the @-sign cannot join {list_label}; "
            f"{shown} has one.",
        )
    if at and domain.strip().startswith("["):
        return Ineligible(
            "ip-literal",
            f"Addresses at an IP address rather than a domain name cannot join "
            f"{list_label}; {shown} is one.",
        )
    if at and ("!" in local or "%" in local):  # UUCP bang paths and the % hack route elsewhere
        code = "bang-path" if "!" in local else "percent-routing"
        reason = f"{shown} routes mail through another host, so it cannot join {list_label}."
        return Ineligible(code, reason)
    return None


def _shown(text: str, limit: int = 120) -> str:
    """Text that is safe to quote in a reply: control characters replaced, length capped."""
    cleaned = _UNSHOWABLE.sub("?", text.strip())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


@functools.lru_cache(maxsize=8192)
def normalise_address(address: str) -> str:
    """The lookup key for an address, so one person maps to one member row.

    email-validator's normalised form (Unicode NFC, IDNA), with the domain as its
    lower-case ASCII (``xn--``) form and the local part lower-cased: local parts are
    case-sensitive in theory, but no real mail system treats ``Jane`` and ``jane``
    as different people, and folding them (as Mailman does) stops duplicates.
    Surrounding spaces and one trailing dot on the domain are dropped. Quoted local
    parts, IP literals, display names and control characters are refused.

    Raises :class:`InvalidAddress` with a message fit to show the sender.
    """
    refusal = _precheck(address, "a list")
    if refusal is not None:
        raise InvalidAddress(refusal.reason)
    local, domain = _validate(_strip_trailing_dot(address.strip()))
    return f"{local.lower()}@{domain}"


def _normalise_domain(domain: str) -> str:
    """An operator-configured domain in the same form as an address's domain.

    Runs it through email-validator (as ``x@domain``) so Unicode and upper-case
    configuration compares equal; a value it refuses is kept lower-cased, so a
    typo in the configuration simply matches nothing instead of crashing checks.
    """
    cleaned = domain.strip().lstrip("@").lstrip(".")
    cleaned = _strip_trailing_dot(cleaned)
    try:
        return _validate(f"x@{cleaned}")[1]
    except InvalidAddress:
        return cleaned.lower()


def _normalise_configured_address(address: str) -> str:
    """An operator-configured address as a lookup key (lower-cased if unparseable)."""
    try:
        return normalise_address(address)
    except InvalidAddress:
        return address.strip().lower()


def _in_domain(domain: str, parent: str) -> bool:
    """``domain`` is ``parent`` or under it, label-wise (``agency.gov.evil.com`` is not)."""
    return bool(parent) and (domain == parent or domain.endswith("." + parent))


def _suffix(suffix: str) -> str:
    """A configured suffix in comparable form: lower case, no leading or trailing dot."""
    return suffix.strip().strip(".").lower()


def _has_non_ascii_label(ascii_domain: str) -> bool:
    """Whether any label is an IDNA A-label, i.e. the domain's Unicode form is not ASCII."""
    return any(label.startswith("xn--") for label in ascii_domain.split("."))


def check_address(
    address: str, rule: EligibilityRule, list_label: str = "this list"
) -> Eligible | Ineligible:
    """Decide whether one bare addr-spec may join the list governed by ``rule``.

    Order: syntax (with specific codes for control characters, several addresses,
    quoted local parts and IP literals), then the rule's explicit extras
    (``allowed_addresses``, ``allowed_domains``), then the suffixes.

    Domains with any internationalised (``xn--``) label are refused with
    ``non-ascii-domain`` even when the ASCII form ends in an eligible suffix:
    ``аgency.gov`` with a Cyrillic ``а`` becomes ``xn--gency-3ve.gov``, which *does*
    end in ``.gov`` and would pass a plain suffix test while looking exactly like
    ``agency.gov`` to a moderator. The .gov and .mil registries issue ASCII names
    only, so this refuses nobody legitimate; a Unicode form that maps to plain ASCII
    (full-width letters, ideographic full stops) is not affected, because IDNA
    normalises it to the ASCII domain it spells. An operator who really wants an
    internationalised domain can list it in ``allowed_domains``.
    """
    refusal = _precheck(address, list_label)
    if refusal is not None:
        return refusal
    shown = _shown(address)
    try:
        local, domain = _validate(_strip_trailing_dot(address.strip()))
    except InvalidAddress as exc:
        detail = str(exc)
        detail = detail[:1].lower() + detail[1:]  # email-validator's sentence, continued
        return Ineligible(
            "invalid-address",
            f"{shown} is not a valid email address, so it cannot join {list_label}: {detail}",
        )
    normalised = f"{local.lower()}@{domain}"
    eligible = Eligible(address=normalised, domain=domain)

    if normalised in {_normalise_configured_address(a) for a in rule.allowed_addresses}:
        return eligible
    if any(_in_domain(domain, _normalise_domain(d)) for d in rule.allowed_domains):
        return eligible
    if _has_non_ascii_label(domain):
        return Ineligible(
            "non-ascii-domain",
            f"Only {describe_rule(rule)} may join {list_label}; the domain of {shown} "
            f"contains non-ASCII characters ({domain}), so it is not one.",
        )
    if any(_in_domain(domain, _suffix(s)) for s in rule.suffixes):
        return eligible
    return Ineligible(
        "domain-not-eligible",
        f"Only {describe_rule(rule)} may join {list_label}; {shown} is not one.",
    )


def _display_name_domains(display_name: str) -> list[str]:
    """Domains of address-like strings in a display name, normalised like addresses.

    NFKC first, so a full-width ``＠`` or letters cannot hide the pretence. Only
    dotted domains count: "Jane@DHS" is a nickname, "jane@dhs.gov" an address.
    """
    folded = unicodedata.normalize("NFKC", display_name)
    found = (m.group(1) for m in _ADDRESS_LIKE.finditer(folded))
    return [_normalise_domain(d) for d in found if "." in d.strip(".")]


def check_from_header(
    value: str, rule: EligibilityRule, list_label: str = "this list"
) -> Eligible | Ineligible:
    """Decide eligibility from a raw ``From`` header value (possibly folded, RFC 2047).

    Beyond :func:`check_address` on the addr-spec, refuses what makes the sender
    ambiguous or deceptive: control characters after unfolding, no address, several
    addresses (RFC 5322 allows that only with a Sender, and we would not know whom
    to confirm), any parse defect other than obsolete-but-harmless syntax (software
    disagrees about who sent ``x@evil.com <y@agency.gov>``, so we take no side), and
    a display name that itself contains an address whose domain differs from the
    addr-spec's (``"boss@agency.gov" <x@evil.com>``), because mail clients often
    show only the display name.
    """
    unfolded = _FOLD.sub("", value)
    shown = _shown(unfolded)
    if not unfolded.strip():
        return Ineligible("empty-address", f"An empty From header cannot join {list_label}.")
    if _CONTROL.search(unfolded):
        return Ineligible(
            "control-character",
            f"The From header {shown} contains control characters such as line breaks, "
            f"so it cannot join {list_label}.",
        )
    try:
        header = POLICY.header_factory("From", unfolded)
        addresses = [(a.display_name, a.addr_spec) for a in header.addresses]
        defects = list(header.defects)
    except Exception:  # the stdlib parser has raised on hostile input before
        return Ineligible(
            "malformed-from",
            f"The From header {shown} could not be read, so it cannot join {list_label}.",
        )
    if len(addresses) > 1:
        return Ineligible(
            "multiple-addresses",
            f"The From header {shown} names several addresses; please write from one "
            f"address to join {list_label}.",
        )
    if not addresses:
        return Ineligible(
            "invalid-address",
            f"The From header {shown} contains no address, so it cannot join {list_label}.",
        )
    if any(not isinstance(d, _HARMLESS_DEFECTS) for d in defects):
        return Ineligible(
            "malformed-from",
            f"The From header {shown} is malformed, so it is unclear who sent it and it "
            f"cannot join {list_label}.",
        )
    display_name, addr_spec = addresses[0]
    result = check_address(addr_spec, rule, list_label)
    if isinstance(result, Eligible):
        domain = result.domain
    elif result.code in ("domain-not-eligible", "non-ascii-domain"):
        # Still report the pretence: it is the better explanation (and audit record).
        domain = _normalise_domain(addr_spec.rpartition("@")[2])
    else:
        return result
    if any(d != domain for d in _display_name_domains(display_name)):
        return Ineligible(
            "display-name-mismatch",
            f"The name in the From header {shown} looks like a different address than "
            f"the one the message was sent from, so it cannot join {list_label}.",
        )
    return result


def _join_or(items: list[str], word: str = "or") -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def describe_rule(rule: EligibilityRule) -> str:
    """The rule in plain words, for refusal replies and help texts.

    E.g. ``addresses at .gov or .mil domains (including subdomains such as
    agency.gov)``, followed by any allowed domains and addresses. Written to follow
    "Only ..." and "may join" so replies read naturally.
    """
    parts: list[str] = []
    suffixes = [s for s in (_suffix(s) for s in rule.suffixes) if s]
    if suffixes:
        dotted = _join_or([f".{s}" for s in suffixes])
        parts.append(
            f"addresses at {dotted} domains (including subdomains such as agency.{suffixes[0]})"
        )
    domains = [d for d in (_normalise_domain(d) for d in rule.allowed_domains) if d]
    if domains:
        noun = "its subdomains" if len(domains) == 1 else "their subdomains"
        parts.append(f"addresses at {_join_or(domains)} (or {noun})")
    addresses = [_normalise_configured_address(a) for a in rule.allowed_addresses]
    addresses = [a for a in addresses if a]
    if addresses:
        noun = "the address" if len(addresses) == 1 else "the addresses"
        parts.append(f"{noun} {_join_or(addresses, 'and')}")
    if not parts:
        return "no addresses (this list's eligibility rule names none)"
    return _join_or(parts, "and")
