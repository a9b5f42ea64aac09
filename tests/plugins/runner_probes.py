"""Measures that misbehave on purpose, for the runner's failure tests (loaded with --plugin).

Which models misbehave is read from environment variables, which worker processes inherit:
``PROBE_SLEEP_MODELS`` / ``PROBE_SLEEP_SECONDS`` (``probe_sleep`` sleeps there),
``PROBE_CRASH_MODELS`` (``probe_crash`` kills its own process with SIGKILL there),
``PROBE_PAUSE_SECONDS`` (``probe_pause`` sleeps that long on every model: a slow run to kill).
"""

from __future__ import annotations

import os
import signal
import time

from gen_measures import LARGER_GAP, register_measure


def _models(var: str) -> set[str]:
    return {m for m in os.environ.get(var, "").split(",") if m}


def _kernel_sum(ctx) -> float:
    return float(sum(float(abs(k).sum()) for k in ctx.kernels()))


@register_measure("probe_sleep", direction=LARGER_GAP, reference="gen-measures runner test probe (tests/plugins/runner_probes.py)")
def probe_sleep(ctx):
    """Sleeps PROBE_SLEEP_SECONDS on the models in PROBE_SLEEP_MODELS; else the kernels' L1 norm."""
    if ctx.model_id in _models("PROBE_SLEEP_MODELS"):
        time.sleep(float(os.environ.get("PROBE_SLEEP_SECONDS", "60")))
    return _kernel_sum(ctx)


@register_measure("probe_crash", direction=LARGER_GAP, reference="gen-measures runner test probe (tests/plugins/runner_probes.py)")
def probe_crash(ctx):
    """Kills its own process on the models in PROBE_CRASH_MODELS; else the kernels' L1 norm."""
    if ctx.model_id in _models("PROBE_CRASH_MODELS"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _kernel_sum(ctx)


@register_measure("probe_pause", direction=LARGER_GAP, reference="gen-measures runner test probe (tests/plugins/runner_probes.py)")
def probe_pause(ctx):
    """Sleeps PROBE_PAUSE_SECONDS on every model, then returns the kernels' L1 norm."""
    time.sleep(float(os.environ.get("PROBE_PAUSE_SECONDS", "0")))
    return _kernel_sum(ctx)
