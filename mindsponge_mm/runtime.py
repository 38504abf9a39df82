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

import glob
import os

HOST_BLOCKING = "MS_DEV_HOST_BLOCKING_RUN"


def accelerator_present() -> bool:
    """Whether an Ascend NPU or an NVIDIA GPU device file exists on this machine."""
    return bool(glob.glob("/dev/davinci[0-9]*") or glob.glob("/dev/nvidia[0-9]*"))


def configure(environ=os.environ) -> bool:
    """Turn host-blocking graph runs on for the CPU (see the module docstring); True if it is on."""
    if HOST_BLOCKING not in environ and not accelerator_present():
        environ[HOST_BLOCKING] = "1"
    return environ.get(HOST_BLOCKING, "0") not in ("", "0")
