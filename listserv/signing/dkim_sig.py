# SPDX-License-Identifier: Apache-2.0
"""DKIM-Signature headers (RFC 6376, relaxed/relaxed) with the private-key step in OpenSSL.

dkimpy supplies the rules that decide whether a signature verifies: how a message
is split into headers and body (`rfc822_parse`), relaxed canonicalization, and
which instance of each signed header is hashed (`select_headers`). The one costly
step, the RSA operation, is done by `cryptography` (OpenSSL, about 0.3 ms a
signature here, against 10–16 ms in dkimpy's pure-Python RSA); Ed25519-SHA256
(RFC 8463) signs the same SHA-256 digest with the second key.

`PostSignatures` is what a post's personalized copies share, computed once per
post: the canonicalized body and its hash, the canonicalized fixed headers, and
which headers the signature picks. A copy then costs one parse of the few headers
personalization added, one SHA-256 over the signed headers, and one signature per
key.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.hashes import SHA256
from dkim import MessageFormatError, rfc822_parse, select_headers
from dkim.canonicalization import CanonicalizationPolicy

__all__ = ["PostSignatures", "SigningKey", "ed25519_signing_key", "rsa_signing_key", "sign"]

_RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")

#: A header as dkimpy's parser gives it: name, and value with its line end.
Header = tuple[bytes, bytes]


@dataclass(frozen=True)
class SigningKey:
    """One key: its algorithm tag (a=), its selector (s=), and the signing of a digest."""

    algorithm: bytes
    selector: bytes
    sign_digest: Callable[[bytes], bytes]


def rsa_signing_key(selector: str, key: RSAPrivateKey) -> SigningKey:
    """rsa-sha256: PKCS#1 v1.5 over the SHA-256 digest of the signed headers."""

    def sign_digest(digest: bytes) -> bytes:
        return key.sign(digest, PKCS1v15(), Prehashed(SHA256()))

    return SigningKey(b"rsa-sha256", selector.encode("ascii"), sign_digest)


def ed25519_signing_key(selector: str, key: Ed25519PrivateKey) -> SigningKey:
    """ed25519-sha256 (RFC 8463): PureEdDSA over the same SHA-256 digest."""
    return SigningKey(b"ed25519-sha256", selector.encode("ascii"), key.sign)


def _fold_names(include: Sequence[bytes]) -> bytes:
    """`h=from:to:…;`, folded so no line passes 78 columns."""
    out = b""
    line = b"\th="
    for i, name in enumerate(include):
        piece = name + (b":" if i < len(include) - 1 else b";")
        if len(line) + len(piece) > 76:
            out += line + b"\r\n"
            line = b"\t"
        line += piece
    return out + line


def _fold_value(value: bytes, first: int) -> bytes:
    """Base64 broken into lines (FWS is allowed anywhere inside b=)."""
    parts = [value[:first]]
    parts += [value[i : i + 74] for i in range(first, len(value), 74)]
    return b"\r\n\t".join(p for p in parts if p)


class _Tags:
    """The fixed part of one key's DKIM-Signature for one signing domain."""

    def __init__(self, key: SigningKey, domain: bytes, include: Sequence[bytes]) -> None:
        self.key = key
        self.head = (
            b" v=1; a="
            + key.algorithm
            + b"; c=relaxed/relaxed;\r\n\td="
            + domain
            + b"; s="
            + key.selector
            + b";\r\n"
            + _fold_names(include)
            + b"\r\n\tbh="
        )
        self._unsigned: tuple[bytes, bytes, bytes, bytes] | None = None

    def header(self, signed: hashlib._Hash, bh: bytes, stamp: bytes) -> bytes:
        """The whole header field, its signature made over `signed` plus itself."""
        cached = self._unsigned
        if cached is None or cached[0] != bh or cached[1] != stamp:
            # The same for every copy of a post signed in the same second.
            value = self.head + bh + b"; t=" + stamp + b";\r\n\tb="
            ((_, canonical),) = _RELAXED.canonicalize_headers([(b"DKIM-Signature", value)])
            cached = self._unsigned = (bh, stamp, value, b"dkim-signature:" + canonical.rstrip())
        _, _, value, hashed = cached
        digest = signed.copy()
        digest.update(hashed)
        signature = base64.b64encode(self.key.sign_digest(digest.digest()))
        return b"DKIM-Signature:" + value + _fold_value(signature, 72) + b"\r\n"


class _Clock:
    """t= for every copy signed in the same second, formatted once."""

    second = -1
    text = b""

    def stamp(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second, self.text = now, str(now).encode("ascii")
        return self.text


_CLOCK = _Clock()


def _body_hash(body: bytes) -> bytes:
    return base64.b64encode(hashlib.sha256(_RELAXED.canonicalize_body(body)).digest())


def _signatures(tags: Sequence[_Tags], selected: bytes, bh: bytes, eol: bytes = b"\r\n") -> bytes:
    signed = hashlib.sha256(selected)
    stamp = _CLOCK.stamp()
    out = b"".join(t.header(signed, bh, stamp) for t in tags)
    return out if eol == b"\r\n" else out.replace(b"\r\n", eol)


def _eol(message: bytes) -> bytes:
    nl = message.find(b"\n")
    return b"\r\n" if nl > 0 and message[nl - 1 : nl] == b"\r" else b"\n"


def sign(
    message: bytes, keys: Sequence[SigningKey], domain: str, include: Sequence[bytes]
) -> bytes:
    """`message` with one DKIM-Signature per key on top (the whole message hashed)."""
    headers, body = rfc822_parse(message)
    canonical = _RELAXED.canonicalize_headers(headers)
    selected = b"".join(x + b":" + y for x, y in select_headers(canonical, include))
    tags = [_Tags(key, domain.encode("ascii"), include) for key in keys]
    return _signatures(tags, selected, _body_hash(body), _eol(message)) + message


class PostSignatures:
    """Signs the copies of one shared copy: what they share is computed here, once.

    A copy is the shared copy with header lines inserted where its header block
    ends, and perhaps its member's own link in the body (that is what
    personalization does). `sign` checks that shape with byte comparisons; anything
    else is signed whole by `sign()`, so a copy is never signed wrongly, only more
    slowly.
    """

    def __init__(
        self, shared: bytes, keys: Sequence[SigningKey], domain: str, include: Sequence[bytes]
    ) -> None:
        self.keys = tuple(keys)
        self.domain = domain
        self.include = tuple(include)
        self.tags = [_Tags(key, domain.encode("ascii"), include) for key in keys]
        self._plans: dict[tuple[bytes, ...], list[int]] = {}
        end = shared.find(b"\r\n\r\n")
        if end < 0:
            self._head = self._tail = None
            return
        self._head, self._tail = shared[: end + 2], shared[end + 2 :]
        headers, body = rfc822_parse(shared)
        self._headers: list[Header] = [(x, y) for x, y in _RELAXED.canonicalize_headers(headers)]
        self._bh = _body_hash(body)

    def sign(self, copy: bytes) -> bytes:
        """`copy` with its DKIM-Signature headers on top.

        A personalized copy may also differ in its body (each member's own link in
        the footer): then only the body hash is computed again, from the copy.
        """
        head, tail = self._head, self._tail
        if head is None or tail is None or not copy.startswith(head):
            return sign(copy, self.keys, self.domain, self.include)
        bh = self._bh
        if len(copy) >= len(head) + len(tail) and copy.endswith(tail):
            added = copy[len(head) : len(copy) - len(tail)]
        else:
            blank = copy.find(b"\r\n\r\n", len(head) - 2)
            if blank < 0:
                return sign(copy, self.keys, self.domain, self.include)
            added = copy[len(head) : blank + 2]
            bh = _body_hash(copy[blank + 4 :])
        if added[:1] in (b" ", b"\t", b"\r", b"\n") or b"\r\n\r\n" in added:
            return sign(copy, self.keys, self.domain, self.include)
        try:
            extra = _RELAXED.canonicalize_headers(rfc822_parse(added)[0]) if added else []
        except MessageFormatError:
            return sign(copy, self.keys, self.domain, self.include)
        headers = self._headers + extra
        plan = self._plan(tuple(x for x, _ in extra))
        selected = b"".join(headers[i][0] + b":" + headers[i][1] for i in plan)
        return _signatures(self.tags, selected, bh) + copy

    def _plan(self, names: tuple[bytes, ...]) -> list[int]:
        """Which header instances the signature hashes, by position (dkimpy's rule)."""
        plan = self._plans.get(names)
        if plan is None:
            combined = [x for x, _ in self._headers] + list(names)
            picked = select_headers([(x, i) for i, x in enumerate(combined)], self.include)
            plan = self._plans[names] = [i for _, i in picked]
        return plan
