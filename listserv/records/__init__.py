# SPDX-License-Identifier: Apache-2.0
"""Records: what federal records rules ask of a list's archive.

`export` writes a FOIA-ready copy of a period (original bytes, manifests
with SHA-256, the recipients of each post from the membership history);
`retention` is the only way records are deleted, and the legal hold that
stops it. The owners' requests for both are acts (`acts/archive.py`).
"""
