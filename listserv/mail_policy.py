# SPDX-License-Identifier: Apache-2.0
"""The `email` policy every parse uses: `policy.default`, with its header classes made once.

The stdlib's header registry builds a new class each time it parses a header
(`type(...)` in `HeaderRegistry.__getitem__`), which costs a join request more
than reading its From header does. The classes are the same every time, so
this registry remembers them; what each header parses to is unchanged.
"""

from __future__ import annotations

from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from typing import Any


class ReusedHeaderClasses(HeaderRegistry):
    """A `HeaderRegistry` that builds each header name's class once."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> Any:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made

    def map_to_type(self, name: str, cls: Any) -> None:
        super().map_to_type(name, cls)
        self._made.pop(name.lower(), None)


#: `policy.default` with reused header classes: parse with this.
POLICY = policy.default.clone(header_factory=ReusedHeaderClasses())
