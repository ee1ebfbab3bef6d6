"""`longred` (arXiv 2502.07365): long-text LM training plus two restoration-distillation terms on short text.

Per step, with the frozen native-RoPE teacher:
  hidden         1 − cos(student, teacher) of the output hidden states of `hidden_layers`, on short text
  short_to_long  KL(teacher ‖ student) of the outputs on short text, the student reading it at skipped
                 position ids spread over the target context (the teacher at 0..n−1), so that long-range
                 positions learn to behave like the teacher's short ones
  lm             language-model loss on long sequences at the target context
loss = hidden_weight · hidden + short_to_long_weight · short_to_long + lm_weight · lm
"""
import contextlib

import torch
import torch.nn.functional as F

from ard.restore_methods.context import decoder
from ard.restore_methods.cpt import lm_loss
from ard.restore_methods.logits_kd import output_kl


@contextlib.contextmanager
def layer_outputs(model, layers):
    """Collect the output hidden states of decoder `layers` (hooks, so no layer is special-cased)."""
    out = {}

    def hook(index):
        def keep(module, args, output):
            out[index] = output[0] if isinstance(output, tuple) else output

        return keep

    stack = decoder(model).layers
    handles = [stack[i].register_forward_hook(hook(i)) for i in layers]
    try:
        yield out
    finally:
        for handle in handles:
            handle.remove()


def skipped_positions(rng, n, target_len):
    """0..p−1 then p+s..n−1+s: one random split p and skip s, so positions reach up to target_len − 1."""
    split = int(rng.integers(1, n))
    skip = int(rng.integers(0, target_len - n + 1))
    positions = torch.arange(n)
    positions[split:] += skip
    return positions


class Objective:
    def __init__(self, hp, ctx):
        self.ctx = ctx
        self.hp = hp
        self.layers = ctx.resolve_layers(hp["hidden_layers"], "longred.hidden_layers")
        self.batch_size = hp["batch_size"]
        self.seq_len = hp["seq_len"] or ctx.native_len
        self.long_batch_size = hp["long_batch_size"]
        self.long_seq_len = hp["long_seq_len"] or ctx.target_len
        if self.seq_len > ctx.target_len:
            raise ValueError(f"longred.seq_len {self.seq_len} exceeds the target context {ctx.target_len}")
        self.tokens_per_step = 2 * self.batch_size * self.seq_len + self.long_batch_size * self.long_seq_len

    def _hidden(self, step):
        ids = self.ctx.windows(step, 0, self.batch_size, self.seq_len)
        with torch.no_grad(), layer_outputs(self.ctx.teacher, self.layers) as teacher_h:
            decoder(self.ctx.teacher)(input_ids=ids)
        with layer_outputs(self.ctx.student, self.layers) as student_h:
            decoder(self.ctx.student)(input_ids=ids)
        losses = [1 - F.cosine_similarity(student_h[i].float(), teacher_h[i].float(), dim=-1).mean() for i in self.layers]
        return torch.stack(losses).mean()

    def _short_to_long(self, step):
        ids = self.ctx.windows(step, 1, self.batch_size, self.seq_len)
        rng = self.ctx.rng(step, 2)
        # drawn for the global batch, then sliced: each rank gets the positions of its own rows
        positions = self.ctx.ranks.slice(
            torch.stack([skipped_positions(rng, self.seq_len, self.ctx.target_len) for _ in range(self.batch_size)]))
        # An explicit mask: with none, transformers reads a jump in position ids as a packed-sequence boundary.
        mask = torch.ones_like(ids)
        with torch.no_grad():
            teacher_logits = self.ctx.teacher(input_ids=ids).logits
        student_logits = self.ctx.student(input_ids=ids, position_ids=positions.to(ids.device), attention_mask=mask).logits
        return output_kl(student_logits, teacher_logits)

    def loss(self, step):
        hp = self.hp
        parts = {"hidden": self._hidden(step), "short_to_long": self._short_to_long(step)}
        parts["lm"] = lm_loss(self.ctx.student, self.ctx.windows(step, 3, self.long_batch_size, self.long_seq_len))
        total = hp["hidden_weight"] * parts["hidden"] + hp["short_to_long_weight"] * parts["short_to_long"]
        return total + hp["lm_weight"] * parts["lm"], parts
