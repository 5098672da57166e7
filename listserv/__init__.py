# SPDX-License-Identifier: Apache-2.0
"""listserv: mailing lists for government communities of practice."""

__version__ = "0.1.0"
