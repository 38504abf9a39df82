"""HostWait: the sleep-then-synchronise controller (host_wait.py), with a fake asynchronous result."""
import time

import numpy as np
import pytest

from mindsponge_mm.errors import UserError
from mindsponge_mm.host_wait import HostWait, sleeping_enabled


class FakeResult:
    """Ready ``work_s`` seconds after it was made; ``asnumpy`` blocks until then, like a launched graph."""

    def __init__(self, work_s, value=1.0):
        self.ready_at = time.perf_counter() + work_s
        self.value = value

    def asnumpy(self):
        while time.perf_counter() < self.ready_at:
            pass
        return np.asarray(self.value)


def test_learns_to_sleep_through_the_work_and_returns_the_value():
    wait = HostWait(target_s=1e-3, enabled=True)
    work = 0.02
    for k in range(60):
        assert float(wait(FakeResult(work, k), "a")) == k
    learned = wait.sleep_s["a"]
    # it settles just around the work: never far below it (the busy wait) nor far above (idle time)
    assert 0.7 * work < learned < 1.5 * work
    spent = []
    for _ in range(10):
        start = time.perf_counter()
        wait(FakeResult(work), "a")
        spent.append(time.perf_counter() - start)
    assert np.median(spent) < 1.6 * work
    # another kind of call has its own estimate
    wait(FakeResult(0.0), "b")
    assert wait.sleep_s["b"] < 1e-3 and wait.sleep_s["a"] > 0.01


def test_disabled_is_a_plain_synchronisation():
    wait = HostWait(enabled=False)
    assert float(wait(FakeResult(0.001, 3.0), "a")) == 3.0
    assert wait.sleep_s == {}


def test_environment_switch(monkeypatch):
    monkeypatch.setenv("MINDSPONGE_MM_HOST_WAIT", "spin")
    assert not sleeping_enabled() and not HostWait().enabled
    monkeypatch.setenv("MINDSPONGE_MM_HOST_WAIT", "sleep")
    assert sleeping_enabled()
    monkeypatch.setenv("MINDSPONGE_MM_HOST_WAIT", "fast")
    with pytest.raises(UserError, match="MINDSPONGE_MM_HOST_WAIT='fast'"):
        sleeping_enabled()
