# SPDX-License-Identifier: Apache-2.0
"""What the MTA's Authentication-Results prove about a message's sender.

Only results stamped by the authserv-id the operator names (`site.authserv_id`,
normally the MTA's host name) are read: anyone can write an
Authentication-Results header, and a receiving MTA removes only forged ones
carrying its own id. A domain that passed SPF (`smtp.mailfrom`), DKIM
(`header.d`) or DMARC (`header.from`) there vouches for the From addresses
at it and below it (relaxed alignment).

The notices stage uses this so that, when results are trusted, a reply to a
sender we do not know goes out only if that sender's domain passed: a
forged From gets no confirmation, refusal or "held" notice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage

import authres

from listserv.mailbox import BadDomain, canonical_address, canonical_domain


@dataclass(frozen=True)
class SenderProof:
    """The message's sender and the domains its trusted results say passed."""

    sender: str  # the From address, domain canonical, lower-cased
    passed: frozenset[str]

    def concerns(self, address: str) -> bool:
        """Whether a notice to `address` is a reply to this message's sender."""
        return _folded(address) == self.sender

    def vouches_for(self, address: str) -> bool:
        domain = _domain_of(address)
        return bool(domain) and any(
            domain == d or domain.endswith("." + d) or d.endswith("." + domain)
            for d in self.passed
            if "." in d
        )


def _folded(address: str) -> str:
    """An address compared as the notices stage mails it (domain canonical, lower case)."""
    return canonical_address(address).lower()


def _domain_of(value: str) -> str:
    domain = value.strip().strip("<>").rpartition("@")[2]
    try:
        return canonical_domain(domain) if domain else ""
    except BadDomain:
        return ""


_PASSING = {("spf", "smtp", "mailfrom"), ("dkim", "header", "d"), ("dmarc", "header", "from")}


def passed_domains(values: Iterable[str], authserv_id: str) -> frozenset[str]:
    """Domains that passed in the Authentication-Results fields stamped by `authserv_id`."""
    found: set[str] = set()
    for value in values:
        try:
            header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
        except Exception:  # authres raises its own error family on hostile input
            continue
        if str(header.authserv_id).lower() != authserv_id.lower():
            continue
        for result in header.results:
            if str(result.result).lower() != "pass":
                continue
            for prop in result.properties:
                if (str(result.method).lower(), prop.type, prop.name) in _PASSING:
                    domain = _domain_of(str(prop.value))
                    if domain:
                        found.add(domain)
    return frozenset(found)


def sender_proof(msg: EmailMessage, sender: str, authserv_id: str) -> SenderProof | None:
    """The proof for this message, or None when no authserv-id is trusted (reply as usual)."""
    if not authserv_id or not sender:
        return None
    try:
        values = [str(v) for v in msg.get_all("Authentication-Results") or []]
    except Exception:  # a header the parser cannot read proves nothing
        values = []
    return SenderProof(_folded(sender), passed_domains(values, authserv_id))
