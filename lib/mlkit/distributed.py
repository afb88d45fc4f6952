"""Data-parallel training under ``torchrun`` (re-exported by :mod:`mlkit.tensors`).

A training verb does::

    with distributed(device) as dist:
        model = dist.wrap(model)                       # DDP when WORLD_SIZE > 1
        loader = dist.loader(dataset, batch_size=64, shuffle=True, seed=seed)
        for epoch in range(epochs):
            dist.set_epoch(epoch)
            for xb, yb in loader: ...
        if dist.is_main:
            save_checkpoint(path, dist.unwrap(model).state_dict(), ...)

``batch_size`` is the *global* batch: each of the ``world_size`` ranks takes
``batch_size // world_size`` samples, and DDP averages gradients, so one process and N
processes take the same optimisation steps. Both paths shard with a DistributedSampler (one
replica when not distributed) so the sample order is identical. gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import InputError

__all__ = ["Distributed", "distributed", "world_size_from_env"]


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: object = None
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model):
        """Move ``model`` to the device; wrap it in DDP when distributed."""
        model = model.to(self.device)
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(model, device_ids=ids)

    @staticmethod
    def unwrap(model):
        return getattr(model, "module", model)

    def loader(self, dataset, *, batch_size: int, shuffle: bool = True, seed: int = 0,
               drop_last: bool = False, **kw):
        """A DataLoader over this rank's shard; ``batch_size`` is the global batch."""
        from torch.utils.data import DataLoader, DistributedSampler

        if batch_size % self.world_size:
            raise InputError("global batch not divisible by the number of processes",
                             expected=f"a multiple of {self.world_size}", got=str(batch_size))
        self._sampler = DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank,
                                           shuffle=shuffle, seed=seed, drop_last=drop_last)
        return DataLoader(dataset, batch_size=batch_size // self.world_size, sampler=self._sampler,
                          drop_last=drop_last, **kw)

    def set_epoch(self, epoch: int) -> None:
        if getattr(self, "_sampler", None) is not None:
            self._sampler.set_epoch(epoch)

    def all_reduce_mean(self, value):
        """Mean of a tensor or float over ranks (identity when not distributed)."""
        import torch

        if not self.enabled:
            return value
        t = value.detach().clone() if torch.is_tensor(value) else torch.tensor(float(value), device=self.device)
        torch.distributed.all_reduce(t)
        t /= self.world_size
        return t if torch.is_tensor(value) else float(t)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as tdist

            tdist.barrier()


@contextlib.contextmanager
def distributed(device: str | None = "auto") -> Iterator[Distributed]:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1), else a no-op
    single-process context on ``device``."""
    from .tensors import resolve_device

    world = world_size_from_env()
    if world <= 1:
        yield Distributed(device=resolve_device(device))
        return
    import torch
    import torch.distributed as tdist

    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    want = (device or "auto").lower()
    use_cuda = want.startswith("cuda") or (want == "auto" and torch.cuda.is_available())
    if use_cuda:
        resolve_device("cuda")  # raises BackendUnavailable when absent
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    tdist.init_process_group(backend=backend, rank=rank, world_size=world)
    try:
        yield Distributed(rank=rank, world_size=world, local_rank=local, device=dev, backend=backend)
        # every rank reaches the end before any tears the group down: otherwise a rank that finished
        # early (while rank 0 still writes its outputs) can be aborted by gloo seeing its peer vanish
        # (seen once in CI as SIGABRT in rank 1). Not on an exception: a barrier would then hang.
        tdist.barrier()
    finally:
        tdist.destroy_process_group()
