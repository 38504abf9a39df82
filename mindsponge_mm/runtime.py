"""How MindSpore's CPU runtime runs our graphs: host-blocking runs, set before the first graph.

MindSpore 2.10's CPU runtime returns from an ``ms.jit`` call that writes parameters (a train
step) before the work is done and finishes it asynchronously; reading the result then waits in
``AsyncRQueue::Wait``, a tight spin loop, while the kernels run on an actor and a kernel thread
that share each kernel through ``ThreadPool::ParallelLaunch`` and wait for each other with
``sched_yield``. With few cores the spinning host thread keeps one of them off the CPU. Measured
on 2 cores (SchNet, 128 features, batch of 10 ethanol, Adam, clipping): 35–300 ms per train step,
median 140 ms, when run asynchronously; 33–34 ms, steady, with ``MS_DEV_HOST_BLOCKING_RUN=1``,
which makes the host run each graph to the end inside the call. Evaluation is unchanged and MD
blocks are about 15 % faster.

:func:`configure` sets that variable unless the user set it (``MS_DEV_HOST_BLOCKING_RUN=0``
restores MindSpore's default) or an Ascend or GPU device is present, where asynchronous launches
overlap host and device work. MindSpore reads it once, when it runs its first graph, so this
module is imported with the package, before any graph exists.
"""
from __future__ import annotations

import contextlib
import glob
import os
import signal
import sys

HOST_BLOCKING = "MS_DEV_HOST_BLOCKING_RUN"


def accelerator_present() -> bool:
    """Whether an Ascend NPU or an NVIDIA GPU device file exists on this machine."""
    return bool(glob.glob("/dev/davinci[0-9]*") or glob.glob("/dev/nvidia[0-9]*"))


def configure(environ=os.environ) -> bool:
    """Turn host-blocking graph runs on for the CPU (see the module docstring); True if it is on."""
    if HOST_BLOCKING not in environ and not accelerator_present():
        environ[HOST_BLOCKING] = "1"
    return environ.get(HOST_BLOCKING, "0") not in ("", "0")


# ---------------------------------------------------------------------------------- interrupts
# MindSpore 2.10 installs its own C-level SIGINT handler before every graph run, and that handler
# sends the process SIGTERM (DEVELOPING.md). The command line therefore treats SIGTERM like
# SIGINT. A Python signal handler runs between any two bytecodes, also inside a weakref callback
# or finaliser, where the KeyboardInterrupt it raises is printed and dropped ("Exception
# ignored in ..."); so the handler also records the request, and the long loops (train steps,
# MD blocks) call check_interrupt() to raise it again at a point where it cannot be lost.
_interrupt_requested = False
_deferring = 0  # > 0 inside deferred_interrupts(): record, do not raise


def _on_interrupt(signum, frame):
    global _interrupt_requested
    _interrupt_requested = True
    if _deferring == 0:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred_interrupts():
    """Hold an interrupt that arrives inside this block until the block is done, then raise it.

    Wraps writes that belong together (an MD block's trajectory frame and restart file, a train
    epoch's logs and checkpoint), so Ctrl-C never lands between or inside them.
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if _deferring == 0:
        check_interrupt()


def _quiet_unraisable(unraisable, _default=sys.unraisablehook):
    """Drop the "Exception ignored" report of our own recorded KeyboardInterrupt; report the rest."""
    if _interrupt_requested and isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    _default(unraisable)


def install_interrupt_handlers() -> dict:
    """SIGINT and SIGTERM raise KeyboardInterrupt and record it; returns what to restore.

    A KeyboardInterrupt dropped in a finaliser is not reported (its request is recorded and
    raised again by :func:`check_interrupt`), so an interrupted command prints only its own line.
    """
    global _interrupt_requested
    _interrupt_requested = False
    previous = {sig: signal.signal(sig, _on_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous["unraisablehook"] = sys.unraisablehook
    sys.unraisablehook = _quiet_unraisable
    return previous


def restore_interrupt_handlers(previous: dict) -> None:
    """Put back what :func:`install_interrupt_handlers` replaced and forget a recorded interrupt (it
    belonged to the command that ends here)."""
    global _interrupt_requested
    _interrupt_requested = False
    previous = dict(previous)
    sys.unraisablehook = previous.pop("unraisablehook", sys.__unraisablehook__)
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def interrupt_requested() -> bool:
    """Whether SIGINT or SIGTERM arrived since :func:`install_interrupt_handlers`."""
    return _interrupt_requested


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if an interrupt arrived (and was perhaps swallowed where it landed)."""
    if _interrupt_requested:
        raise KeyboardInterrupt
