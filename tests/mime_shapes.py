# SPDX-License-Identifier: Apache-2.0
"""Every MIME shape the footer tests decorate, as posts a member could send.

The footer tests (test_decorate) prove each shape is decorated without breaking it;
the signing tests send the same shapes through delivery and verify the signatures
of what arrives, so no shape of post leaves with a signature that fails.
"""

from __future__ import annotations

import base64

from tests.test_decorate import ALTERNATIVE, MIXED, PDF_B64, PLAIN, msg, signed_message


def _post(text: str, body: bytes = b"") -> bytes:
    return msg(text) + body


def shapes() -> dict[str, bytes]:
    """Shape name → the post as received (LF or CRLF line ends, as the tests have them)."""
    image = base64.encodebytes(bytes(range(256)))
    latin = "Caf\xe9 cr\xe8me\n".encode("latin-1")
    found = {
        "plain-7bit": PLAIN,
        "plain-crlf": PLAIN.replace(b"\n", b"\r\n"),
        "quoted-printable": _post(
            """
            From: jane@agency.gov
            Subject: qp
            MIME-Version: 1.0
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: quoted-printable

            Caf=C3=A9 au lait, a very long line that needs a soft break somewhere aroun=
            d here.
            """
        ),
        "base64": _post(
            """
            From: jane@agency.gov
            Subject: b64
            MIME-Version: 1.0
            Content-Type: text/plain; charset="utf-8"
            Content-Transfer-Encoding: base64

            """,
            base64.encodebytes(("Ünïcode body line.\r\n" * 20).encode("utf-8")),
        ),
        "html": _post(
            """
            From: jane@agency.gov
            Subject: html
            Content-Type: text/html; charset=utf-8

            <html><body><p>Hi</p><!-- </body> --><p>More</p></BODY >
            </html>
            """
        ),
        "html-latin-1-no-body-close": _post(
            """
            From: jane@agency.gov
            Subject: html
            Content-Type: text/html; charset=iso-8859-1

            """,
            b"<p>Caf\xe9</p>",
        ),
        "alternative": ALTERNATIVE,
        "alternative-related": _post(
            """
            From: jane@agency.gov
            Subject: alt+related
            MIME-Version: 1.0
            Content-Type: multipart/alternative; boundary="A"

            --A
            Content-Type: text/plain

            Plain.
            --A
            Content-Type: multipart/related; boundary="R"

            --R
            Content-Type: text/html

            <body><img src="cid:logo"></body>
            --R
            Content-Type: image/png
            Content-ID: <logo>
            Content-Transfer-Encoding: base64

            """,
            image + b"--R--\n--A--\n",
        ),
        "mixed-pdf": MIXED,
        "related": _post(
            """
            From: jane@agency.gov
            Subject: related
            MIME-Version: 1.0
            Content-Type: multipart/related; boundary="REL"; type="text/html"

            --REL
            Content-Type: text/html

            <html><body><img src="cid:x"></body></html>
            --REL
            Content-Type: image/gif
            Content-ID: <x>
            Content-Transfer-Encoding: base64

            R0lGODlhAQABAAAAACw=
            --REL--
            """
        ),
        "signed": signed_message("application/pgp-signature")[0],
        "encrypted": _post(
            """
            From: jane@agency.gov
            Subject: secret
            MIME-Version: 1.0
            Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="ENC"

            --ENC
            Content-Type: application/pgp-encrypted

            Version: 1
            --ENC
            Content-Type: application/octet-stream

            -----BEGIN PGP MESSAGE-----
            hQEMA0xyz
            -----END PGP MESSAGE-----
            --ENC--
            """
        ),
        "single-part-pdf": _post(
            """
            From: jane@agency.gov
            Subject: pdf
            Content-Type: application/pdf
            Content-Transfer-Encoding: base64

            """,
            PDF_B64,
        ),
        "latin-1-8bit": _post(
            """
            From: jane@agency.gov
            Subject: latin
            Content-Type: text/plain; charset="iso-8859-1"; format=flowed
            Content-Transfer-Encoding: 8bit

            """,
            latin,
        ),
        "utf-8-8bit": _post(
            """
            From: jane@agency.gov
            Subject: 8bit
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: 8bit

            Ñandú — 日本語
            """
        ),
        "shift-jis": _post(
            """
            From: jane@agency.gov
            Subject: sjis
            Content-Type: text/plain; charset=Shift_JIS
            Content-Transfer-Encoding: 8bit

            """,
            "こんにちは、皆さん。\n".encode("shift_jis"),
        ),
        "iso-2022-jp": b"From: a@b.gov\nSubject: jis\nContent-Type: text/plain; charset=ISO-2022-JP\n\n"
        + "会議は明日です。\n".encode("iso-2022-jp"),
        "wrong-declared-charset": _post(
            """
            From: jane@agency.gov
            Subject: wrong
            Content-Type: text/plain; charset=utf-8

            """,
            latin,
        ),
        "undeclared-8bit": b"From: jane@agency.gov\nSubject: raw\n\nCaf\xc3\xa9\n",
        "dkim-signed-original": _post(
            """
            From: Jane Doe <jane@agency.gov>
            To: sm-cop@lists.example.gov
            Cc: bob@agency.gov
            Subject: with a poster's signature
            Date: Mon, 4 Mar 2024 10:00:00 -0500
            Message-ID: <w1@agency.gov>
            DKIM-Signature: v=1; d=agency.gov; h=from:subject; bh=x; b=y

            Body.
            """
        ),
    }
    return found
