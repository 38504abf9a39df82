"""Waiting for a compiled call without MindSpore's busy wait taking a core from its own kernels.

MindSpore 2.10's CPU runtime returns from an ``ms.jit`` call before the work is done; reading a
result (``asnumpy``), or making the next call, then waits in ``AsyncRQueue::Wait``, a tight spin
loop. The kernels run on two more threads (an actor thread and a kernel thread that share each
kernel's work through ``ThreadPool::ParallelLaunch``). On a machine with few cores the spinning
host thread takes a core from them, and every kernel split across the two threads waits for a
descheduled thread: a training step of SchNet on 10 ethanol molecules (2 cores) took 35–300 ms
(median 140) instead of a steady 37 ms.

:class:`HostWait` sleeps first, for about as long as the remaining work takes, and only then
reads the result, so the host spins for a millisecond instead of the whole step. The sleep is
learned per kind of call (``key``): after each call it grows by half the time still spent
waiting when that exceeded ``target_s``, and shrinks by 10 % when the result was already there.
It settles just below the remaining work. Only the timing changes, never a number.

It is on where the process may use fewer than :data:`MANY_CORES` cores (where the busy wait
matters) and off elsewhere; ``MINDSPONGE_MM_HOST_WAIT=sleep`` or ``=spin`` forces either.
"""
from __future__ import annotations

import os
import time

import numpy as np

MANY_CORES = 8  # with this many usable cores the spinning host thread costs nothing measurable
ENV = "MINDSPONGE_MM_HOST_WAIT"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def sleeping_enabled() -> bool:
    """Whether :class:`HostWait` sleeps before it synchronises (see the module docstring)."""
    mode = os.environ.get(ENV, "auto").strip().lower()
    if mode not in ("auto", "sleep", "spin"):
        from .errors import UserError

        raise UserError(f"{ENV}={mode!r}: use auto, sleep or spin")
    if mode == "auto":
        return _usable_cores() < MANY_CORES
    return mode == "sleep"


class HostWait:
    """``wait(tensor, key)`` -> numpy array: sleep the learned time for ``key``, then synchronise.

    Args:
        target_s: the wait (s) still spent after the sleep that the controller aims at.
        max_sleep_s: upper bound of the learned sleep (s).
        enabled: None (default) follows :func:`sleeping_enabled`.
    """

    def __init__(self, target_s: float = 1e-3, max_sleep_s: float = 5.0, enabled: bool | None = None):
        self.target_s = float(target_s)
        self.max_sleep_s = float(max_sleep_s)
        self.enabled = sleeping_enabled() if enabled is None else bool(enabled)
        self.sleep_s: dict = {}

    def __call__(self, tensor, key=None) -> np.ndarray:
        if not self.enabled:
            return tensor.asnumpy()
        planned = self.sleep_s.get(key, 0.0)
        if planned > 0.0:
            time.sleep(planned)
        start = time.perf_counter()
        value = tensor.asnumpy()
        waited = time.perf_counter() - start
        if waited > self.target_s:
            planned = max(1.25 * planned, planned + 0.5 * waited) if planned == 0.0 else 1.25 * planned + self.target_s
        else:
            planned *= 0.98
        self.sleep_s[key] = min(planned, self.max_sleep_s)
        return value
