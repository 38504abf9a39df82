"""Data parallelism on MindSpore's own engine: ``msrun`` starts the ranks, this module joins them.

Start N ranks with ``msrun --worker_num=N --local_worker_num=N mindsponge-mm-train ...`` (or
``python -m mindsponge_mm.cli train ...``) and set ``training.distributed: true``. On CPU the
collective backend is mccl, on Ascend HCCL; :func:`init` picks it through
``mindspore.communication.init()``. There is no home-made cluster layer.
"""
from __future__ import annotations

import os

from ..errors import UserError


def launched_by_msrun() -> bool:
    """True inside a process started by ``msrun`` (it exports the scheduler/worker variables)."""
    return "MS_WORKER_NUM" in os.environ or "RANK_SIZE" in os.environ


def init() -> tuple[int, int]:
    """Join the process group; return ``(rank, world_size)``."""
    if not launched_by_msrun():
        raise UserError("training.distributed is true but this process was not started by msrun; run "
                        "`msrun --worker_num=2 --local_worker_num=2 $(which mindsponge-mm) train CONFIG` "
                        "or set training.distributed: false")
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank
    from mindspore.communication import init as comm_init

    comm_init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=False)
    return int(get_rank()), int(get_group_size())
