# SPDX-License-Identifier: Apache-2.0
"""DKIM signatures and ARC seals on what we send, when the site configures a key.

Input: the bytes of a copy about to go to the relay, and the list's domain (d=).
Output: the same bytes with a `DKIM-Signature` per key (RSA, and Ed25519 when
`[dkim] ed25519_key_file` is set) and, for posts, an ARC set (`ARC-Seal`,
`ARC-Message-Signature`, `ARC-Authentication-Results`) prepended.
Trusts: the configured keys, and the `Authentication-Results` headers carrying our
MTA's authserv-id (the MTA must strip forged ones, as OpenDKIM/OpenDMARC do).

Why both: a list changes From, Subject and body, so the poster's DKIM no longer
verifies; our DKIM (d= the list's domain, covering From, List-Id,
List-Unsubscribe and List-Unsubscribe-Post as Gmail and Yahoo require of bulk
senders) gives the copy an aligned signature of its own, and the ARC seal tells
receivers what our MTA saw on the way in (SPF, DKIM, DMARC of the original).

Cost: DKIM signatures are made by `dkim_sig` with OpenSSL (about 0.3 ms an RSA-2048
signature); a post's personalized copies share one `PostSignatures` (`prepare`),
so a copy costs its own headers' hash and the signature. The ARC seal covers only
headers every member's copy shares, so a post is sealed once, by dkimpy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import dkim
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from listserv.config.dkim import (
    SigningKeyError,
    check_private_key,
    load_ed25519_key,
    load_rsa_key,
)
from listserv.signing.dkim_sig import (
    PostSignatures,
    ed25519_signing_key,
    rsa_signing_key,
)
from listserv.signing.dkim_sig import sign as dkim_sign

if TYPE_CHECKING:
    from listserv.config import Settings

__all__ = [
    "ARC_HEADERS",
    "DKIM_HEADERS",
    "PostSignatures",
    "Signer",
    "SigningKeyError",
    "check_private_key",
    "make_signer",
]

#: What the DKIM signature covers. Absent headers are signed too, as "must stay absent";
#: From and the List-* headers receivers act on are signed once more than they occur,
#: so a header added above ours breaks the signature instead of being trusted.
DKIM_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)

#: What the ARC message signature covers: headers every member's copy shares, never
#: the per-member List-Unsubscribe, so one seal serves the whole post.
ARC_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"list-id",
    b"list-post",
    b"mime-version",
    b"content-type",
)

_AUTH_RESULTS = re.compile(rb"^Authentication-Results:[^\n]*\n(?:[ \t][^\n]*\n)*", re.I | re.M)


def _eol(message: bytes) -> bytes:
    nl = message.find(b"\n")
    return b"\r\n" if nl > 0 and message[nl - 1 : nl] == b"\r" else b"\n"


def _header_block(message: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = message.find(separator)
        if end >= 0:
            return message[: end + len(separator)]
    return message


class Signer:
    """Signs with the site's keys: `sign` a copy, `prepare` a post's copies, `seal` a post."""

    def __init__(
        self,
        selector: str,
        private_key: bytes,
        default_domain: str,
        authserv_id: str,
        *,
        arc: bool = True,
        ed25519_key: bytes | None = None,
        ed25519_selector: str = "",
    ) -> None:
        rsa = load_rsa_key(private_key)
        self.keys = [rsa_signing_key(selector, rsa)]
        if ed25519_key is not None:
            ed_selector = ed25519_selector or f"{selector}-ed25519"
            self.keys.append(ed25519_signing_key(ed_selector, load_ed25519_key(ed25519_key)))
        self.selector = selector.encode("ascii")
        # dkimpy's ARC signer reads PKCS#1 PEM; one seal a post, so its own RSA is fine.
        self.private_key = rsa.private_bytes(
            Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()
        )
        self.default_domain = default_domain
        self.authserv_id = authserv_id.encode("ascii")
        self.arc = arc

    def sign(self, message: bytes, domain: str = "") -> bytes:
        """The message with a DKIM-Signature per key (d= `domain`, relaxed/relaxed) on top."""
        return dkim_sign(message, self.keys, domain or self.default_domain, DKIM_HEADERS)

    def prepare(self, shared: bytes, domain: str = "") -> PostSignatures:
        """What signing each personalized copy of `shared` needs, computed once."""
        return PostSignatures(shared, self.keys, domain or self.default_domain, DKIM_HEADERS)

    def seal(self, shared: bytes, domain: str = "", original: bytes = b"") -> bytes:
        """The shared copy with our ARC set on top, recording our MTA's results.

        The results are read from the shared copy, or from the original post when
        decoration did not keep them (the "wrap" DMARC mitigation). No results from
        our MTA means no seal: there is nothing for ARC to vouch for.
        """
        if not self.arc:
            return shared
        head = _header_block(shared)
        sealed_input = shared
        if not _AUTH_RESULTS.search(head) and original:
            found = _AUTH_RESULTS.findall(_header_block(original).replace(b"\r\n", b"\n"))
            if found:
                eol = _eol(shared)
                sealed_input = b"".join(h.replace(b"\n", eol) for h in found) + shared
        arc_set: Sequence[bytes] = dkim.arc_sign(
            sealed_input,
            self.selector,
            (domain or self.default_domain).encode("ascii"),
            self.private_key,
            self.authserv_id,
            include_headers=list(ARC_HEADERS),
            linesep=_eol(shared),
        )
        return b"".join(arc_set) + shared


def make_signer(settings: Settings) -> Signer | None:
    """The site's signer, or None when [dkim] is not configured (signing is off)."""
    config = settings.dkim
    if config is None:
        return None
    return Signer(
        config.selector,
        config.private_key,
        config.domain,
        config.authserv_id,
        arc=config.arc,
        ed25519_key=config.ed25519_key,
        ed25519_selector=config.ed25519_selector,
    )
