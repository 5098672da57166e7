# SPDX-License-Identifier: Apache-2.0
"""Mailbox addresses as we store and mail them: one canonical domain, and real recipients only.

A domain is folded once, the same way everywhere (eligibility, the roster,
duplicate checks, notices): Unicode NFKC, so a full-width `．` or `ａ` is the
character it looks like, then IDNA 2008 (the `idna` package, with UTS #46
mapping) to its lower-case ASCII form. `x6@agency．gov` is therefore stored,
matched and mailed as `x6@agency.gov`.

`undeliverable` says why an address cannot be a real recipient, so no
service mail (a refusal, a confirmation, a notice) is ever sent to it: the
forged From lines of spam would otherwise turn the list into a source of
backscatter. Source routes and their relatives name a different mailbox
than the one they seem to (`evil.com!x@agency.gov` is a UUCP bang path,
`x%agency.gov@evil.com` the `%` hack, `"x@agency.gov"@evil.com` a quoted
local part holding an `@`); IP literals and over-long local parts (RFC 5321
§4.5.3.1.1: 64 octets) are not mailboxes anyone reads. A non-ASCII address
is mailed only through a relay that offers SMTPUTF8: the relay client
answers such recipients itself, before anything is sent, when it does not.

>>> canonical_address("X6@agency．GOV")
'X6@agency.gov'
>>> undeliverable("evil.com!x13@agency.gov")
'bang-path'
>>> undeliverable("jane@agency.gov") is None
True
"""

from __future__ import annotations

import functools
import re
import unicodedata

import idna

#: Octets a local part may have (RFC 5321 §4.5.3.1.1).
MAX_LOCAL_PART = 64
#: Octets a domain may have (RFC 5321 §4.5.3.1.2).
MAX_DOMAIN = 255

_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # a quoted local part may hold spaces
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


class BadDomain(ValueError):
    """The text is not a domain name IDNA 2008 accepts."""


@functools.lru_cache(maxsize=8192)
def canonical_domain(domain: str) -> str:
    """NFKC, then IDNA 2008 (UTS #46 mapping): the lower-case ASCII form, no trailing dot."""
    folded = unicodedata.normalize("NFKC", domain.strip()).rstrip(".").rstrip("\u3002")
    if not folded:
        raise BadDomain("empty domain")
    if folded.isascii():
        ascii_form = folded.lower()
        if not all(_LABEL.fullmatch(label) for label in ascii_form.split(".")):
            raise BadDomain(f"{domain!r} is not a domain name (labels of letters, digits, -)")
        return ascii_form
    try:
        return idna.encode(folded, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise BadDomain(f"{domain!r} is not a valid internationalised domain ({exc})") from None


def canonical_address(address: str) -> str:
    """The address as we store and mail it: the local part as written, the domain canonical.

    An address whose domain does not fold is returned as given (stripped);
    `undeliverable` is what refuses it.
    """
    text = address.strip().strip("<>").strip()
    local, at, domain = text.rpartition("@")
    if not at or not local:
        return text
    try:
        return f"{local}@{canonical_domain(domain)}"
    except BadDomain:
        return text


def undeliverable(address: str) -> str | None:
    """Why `address` cannot be a real recipient (a short code), or None if it can be."""
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return "no-domain"
    quoted = local.startswith('"') and local.endswith('"') and len(local) > 1
    if (_CONTROL if quoted else _CONTROL_OR_SPACE).search(local) or _CONTROL_OR_SPACE.search(
        domain
    ):
        return "control-character"
    if domain.startswith("["):
        return "ip-literal"
    if local.startswith('"'):
        if "@" in local:
            return "quoted-at-sign"
    elif "@" in local:
        return "several-at-signs"
    if "!" in local:
        return "bang-path"
    if "%" in local:
        return "percent-routing"
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        return "local-part-too-long"
    try:
        ascii_domain = canonical_domain(domain)
    except BadDomain:
        return "bad-domain"
    if "." not in ascii_domain or len(ascii_domain) > MAX_DOMAIN:
        return "bad-domain"
    if ascii_domain.replace(".", "").isdigit():
        return "ip-literal"
    return None
