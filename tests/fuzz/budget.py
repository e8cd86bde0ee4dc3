"""Hypothesis budgets of the fuzz tests: bounded and derandomized in CI, deeper on demand.

`FUZZ_EXAMPLES=N` runs every fuzz test with N examples from a random seed (print_blob shows how to
replay a failure); without it each test runs its own small, fixed budget with derandomize=True, so a CI
run is the same run every time.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

DEEP_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0") or 0)
_COMMON = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}
settings.register_profile("openpairs-ci", derandomize=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("openpairs-deep", derandomize=False, **_COMMON)  # type: ignore[arg-type]
settings.load_profile("openpairs-deep" if DEEP_EXAMPLES else "openpairs-ci")


def fuzz_settings(examples: int) -> settings:
    """Settings for one fuzz test: `examples` in CI, FUZZ_EXAMPLES when that is set."""
    return settings(max_examples=DEEP_EXAMPLES or examples)
