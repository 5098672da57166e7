# SPDX-License-Identifier: Apache-2.0
"""Where the project's own files live: the default configuration and the templates.

Relative paths in the configuration are resolved under PROJECT_ROOT, so the
service behaves the same whatever directory it is started from.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "listserv.toml"
TEMPLATES_DIR = PROJECT_ROOT / "templates"
