"""Record each layer's post-RoPE Q, K and V through transformers' attention interface.

A model switched to `ATTENTION` runs ordinary sdpa attention; inside a `record()` block the attention
function also keeps the tensors it was handed ([B, H, T, D]; K and V un-expanded under GQA). The mask
function must be registered under the same name, or transformers silently passes attention_mask=None.
"""
import contextlib
import contextvars
from dataclasses import dataclass

import torch
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

ATTENTION = "ard_capture"
_active = contextvars.ContextVar("ard_capture_recorder", default=None)
_sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]


@dataclass
class Captured:
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor


class Recorder(dict):
    """layer index → Captured, filled by the forward passes run inside `record()`."""

    def __init__(self, layers=None):
        super().__init__()
        self.layers = None if layers is None else frozenset(layers)


def _capturing_attention(module, query, key, value, attention_mask, **kwargs):
    recorder = _active.get()
    if recorder is not None and (recorder.layers is None or module.layer_idx in recorder.layers):
        recorder[module.layer_idx] = Captured(query, key, value)
    return _sdpa(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register(ATTENTION, _capturing_attention)
AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def enable(model):
    """Route `model`'s attention through the capturing function (a no-op outside `record()`)."""
    model.set_attn_implementation(ATTENTION)
    return model


@contextlib.contextmanager
def record(layers=None):
    """Collect Q/K/V of `layers` (None: all) from the forward passes run inside the block."""
    recorder = Recorder(layers)
    token = _active.set(recorder)
    try:
        yield recorder
    finally:
        _active.reset(token)
