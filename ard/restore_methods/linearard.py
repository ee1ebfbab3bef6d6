"""`linearard` (arXiv 2604.00004): attention-relation distillation on short text.

The frozen teacher (native RoPE) and the LoRA student (scaled RoPE) read the same short sequences. For
each selected layer l and relation r ∈ {qq, kk, vv} (post-RoPE Q·Qᵀ, K·Kᵀ, V·Vᵀ, causal, row softmax at
scale D^-0.5):
    L[r, l] = Σ_heads Σ_valid rows KL(P_teacher ‖ P_student) / (valid tokens × heads of the relation)
    loss    = Σ_r w_r · mean_l L[r, l]  (+ logits_kd_weight · output KL)
A relation's heads are its rows' heads: Hq for qq, the un-expanded key/value heads for kk and vv, which
equals expanding them to the Hq query heads as attention does and dividing by Hq.
The n×n maps are never built: `relation_kl.relation_kl` computes the exact KL in linear memory.
"""
import numpy as np
import torch

from relation_kl import relation_kl

from ard.restore_methods import capture
from ard.restore_methods.context import decoder
from ard.restore_methods.logits_kd import output_kl

FIELDS = {"qq": "q", "kk": "k", "vv": "v"}


def relation_losses(student, teacher, relations, layers, attention_mask=None):
    """{(relation, layer): L[r, l]} from two capture.Recorders of the same batch."""
    losses = {}
    for layer in layers:
        for relation in relations:
            xs = getattr(student[layer], FIELDS[relation])
            xt = getattr(teacher[layer], FIELDS[relation])
            batch, heads, length, _ = xs.shape
            valid = batch * length if attention_mask is None else attention_mask.sum()
            kl = relation_kl(xs, xs, xt, xt, attention_mask=attention_mask, reduction="sum")
            losses[relation, layer] = kl / (valid * heads)
    return losses


def combine(losses, weights):
    """Σ_r w_r · mean over layers of L[r, l]."""
    relations = dict.fromkeys(r for r, _ in losses)
    return sum(weights[r] * torch.stack([v for (q, _), v in losses.items() if q == r]).mean() for r in relations)


class Objective:
    def __init__(self, hp, ctx):
        self.ctx = ctx
        self.hp = hp
        self.layers = ctx.resolve_layers(hp["layers"], "linearard.layers")
        self.batch_size = hp["batch_size"]
        self.seq_len = hp["seq_len"] or ctx.native_len
        self.tokens_per_step = self.batch_size * self.seq_len
        groups = np.array_split(np.array(self.layers), min(hp["log_layer_groups"], len(self.layers)))
        self.groups = {f"L{g[0]}-{g[-1]}" if len(g) > 1 else f"L{g[0]}": list(g) for g in groups}

    def _forward(self, model, ids):
        # Logits are needed only for the optional KD term; otherwise stop at the decoder.
        with capture.record(self.layers) as recorded:
            out = model(input_ids=ids) if self.hp["logits_kd_weight"] else decoder(model)(input_ids=ids)
        return recorded, getattr(out, "logits", None)

    def loss(self, step):
        ids = self.ctx.windows(step, 0, self.batch_size, self.seq_len)
        with torch.no_grad():
            teacher, teacher_logits = self._forward(self.ctx.teacher, ids)
        student, student_logits = self._forward(self.ctx.student, ids)
        losses = relation_losses(student, teacher, self.hp["relations"], self.layers)
        total = combine(losses, self.hp["relation_weights"])
        parts = {}
        for relation in self.hp["relations"]:
            parts[relation] = torch.stack([losses[relation, l] for l in self.layers]).mean()
            for name, group in self.groups.items():
                parts[f"{relation}_{name}"] = torch.stack([losses[relation, l] for l in group]).mean()
        if self.hp["logits_kd_weight"]:
            parts["kd"] = output_kl(student_logits, teacher_logits)
            total = total + self.hp["logits_kd_weight"] * parts["kd"]
        return total, parts
