"""Data parallelism for the restore stage over torch.distributed (torchrun sets the environment).

Every rank holds the whole model and draws the same global batch from (seed, stage, step); it trains on
its own contiguous slice, and the LoRA gradients are averaged across ranks after each backward pass, so N
ranks take exactly the optimizer steps one process takes on the same global batch (the trainable
parameters are the small LoRA adapter: one all-reduce of one flat buffer a step). Rank 0 alone writes
checkpoints, logs and outputs.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def main(self):
        return self.rank == 0

    def slice(self, batch):
        """This rank's contiguous share of a global batch (its first dimension)."""
        if self.world == 1:
            return batch
        if len(batch) % self.world:
            raise ValueError(f"a batch of {len(batch)} does not split evenly over {self.world} ranks")
        share = len(batch) // self.world
        return batch[self.rank * share : (self.rank + 1) * share]

    def average_gradients(self, parameters):
        if self.world == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        flat = torch._utils._flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= self.world
        for grad, averaged in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
            grad.copy_(averaged)

    def mean(self, value):
        """The mean over ranks of a scalar tensor (for the log: the global batch's loss)."""
        if self.world == 1:
            return value
        value = value.detach().clone()
        dist.all_reduce(value)
        return value / self.world

    def barrier(self):
        if self.world > 1:
            dist.barrier()


def start(device_type):
    """Ranks of this process: joins the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size())


def local_device(device):
    """cuda:<local rank> for a rank of a multi-GPU job, else the device as configured."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def finish(ranks):
    if ranks.world > 1:
        dist.barrier()
        dist.destroy_process_group()
