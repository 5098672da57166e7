# SPDX-License-Identifier: Apache-2.0
"""Signing what the lists send: DKIM on every copy (`dkim_sig`, OpenSSL) and ARC on posts.

`signer.Signer` is the site's signer; `dkim_sig` builds DKIM-Signature headers with
dkimpy's canonicalization and the key operation done by `cryptography`.
"""

from listserv.signing.dkim_sig import PostSignatures
from listserv.signing.signer import (
    ARC_HEADERS,
    DKIM_HEADERS,
    Signer,
    SigningKeyError,
    check_private_key,
    make_signer,
)

__all__ = [
    "ARC_HEADERS",
    "DKIM_HEADERS",
    "PostSignatures",
    "Signer",
    "SigningKeyError",
    "check_private_key",
    "make_signer",
]
