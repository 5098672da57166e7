# SPDX-License-Identifier: Apache-2.0
"""The event loop every long-running process of the service runs on: uvloop.

Why: the service spends its CPU in socket reads and writes, timers and
callbacks (SMTP intake, the relay connections, uvicorn's HTTP). uvloop runs
those in libuv (C); asyncio's own loop runs them in Python. Measured on the
API benchmark (2 cores): about a seventh less CPU a request. Only the loop
changes: the code above it is plain asyncio, and the tests run it on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on a uvloop loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
