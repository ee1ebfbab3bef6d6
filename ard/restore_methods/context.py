"""What every objective reads: the frozen teacher, the LoRA student, the training tokens, the lengths."""
from dataclasses import dataclass

import numpy as np
import torch

from ard.restore_methods.distributed import Ranks


@dataclass
class Context:
    teacher: torch.nn.Module  # native RoPE, frozen, eval mode
    student: torch.nn.Module  # peft model over the scaled-RoPE student
    tokens: np.ndarray  # tokens/train.npy, int32, documents joined by eos
    native_len: int
    target_len: int  # factor × native
    device: torch.device
    seed: int
    stage: int = 0  # index in a sequence of stages; salts the data stream
    ranks: Ranks = Ranks()  # data-parallel ranks: each trains on its slice of every global batch

    def windows(self, step, stream, batch_size, seq_len):
        """[batch_size, seq_len] token windows drawn as a pure function of (seed, stage, step, stream);
        under data parallelism, this rank's slice of them.

        Drawing from the step index, not from a running generator, is what makes a resumed run read
        exactly the batches an uninterrupted one reads.
        """
        if len(self.tokens) < seq_len:
            raise ValueError(f"training tokens ({len(self.tokens)}) are fewer than one sequence of {seq_len}")
        starts = self.ranks.slice(self.rng(step, stream).integers(0, len(self.tokens) - seq_len + 1, size=batch_size))
        batch = np.stack([self.tokens[s : s + seq_len] for s in starts]).astype(np.int64)
        return torch.from_numpy(batch).to(self.device)

    def rng(self, step, stream):
        """A generator for one (step, stream): the same numbers on every run and after every resume."""
        return np.random.default_rng([self.seed, self.stage, step, stream])

    def resolve_layers(self, spec, what):
        """`all` or indices (negative from the last) → sorted layer indices of the student."""
        n = self.student.config.num_hidden_layers
        if spec == "all":
            return list(range(n))
        bad = [i for i in spec if not -n <= i < n]
        if bad:
            raise ValueError(f"{what}: layer {bad[0]} does not exist (the model has {n} layers)")
        return sorted({i % n for i in spec})


def decoder(model):
    """The decoder stack without the LM head (for objectives that need no logits)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder()
