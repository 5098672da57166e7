# SPDX-License-Identifier: Apache-2.0
"""Short fuzzing runs of the parsers that face mail from anyone (benchmarks/fuzz.py runs long).

Each runs a few hundred Hypothesis examples from tests/fuzz_targets.py: the
MIME decoration pipeline, the command parser, the DSN parser. A failure is
shrunk by Hypothesis to the smallest input that still breaks the target.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz_targets import TARGETS, Target

SHORT = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_fuzz_target_holds_for_generated_input(target: Target) -> None:
    @SHORT
    @given(target.strategy)
    def check(value: object) -> None:
        target.run(value)

    check()
