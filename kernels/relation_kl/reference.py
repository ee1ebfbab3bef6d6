"""Materialised relation-KL reference: builds the full T×T logit maps, so O(T²) memory.

Used by the tests (in float64) and by the benchmark (in the input dtype, as the "materialised PyTorch"
baseline). Gradients come from plain autograd.
"""
import torch

# Finite stand-in for -inf: keeps 0·(masked − masked) at 0 in the value and NaN out of autograd.
_NEG = -1e30


def _logits(q, k, scale):
    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    return scale * (q @ k.transpose(-1, -2))


def relation_kl_reference(s_q, s_k, t_q, t_k, *, scale_s=None, scale_t=None, causal=True,
                          attention_mask=None, reduction="sum"):
    """Same contract as `relation_kl.relation_kl`; computes in float64 for float64 inputs, else float32."""
    cdt = torch.float64 if s_q.dtype == torch.float64 else torch.float32
    B, _, T, Ds = s_q.shape
    scale_s = Ds ** -0.5 if scale_s is None else scale_s
    scale_t = t_q.shape[-1] ** -0.5 if scale_t is None else scale_t
    a = _logits(s_q, s_k, scale_s).to(cdt)
    b = _logits(t_q.detach(), t_k.detach(), scale_t).to(cdt)
    valid = torch.ones(B, 1, T, T, dtype=torch.bool, device=s_q.device)
    if causal:
        valid = valid.tril()
    if attention_mask is not None:
        valid = valid & attention_mask.bool()[:, None, None, :]
    row_valid = valid.any(-1)
    if attention_mask is not None:
        row_valid = row_valid & attention_mask.bool()[:, None, :]
    logp_s = torch.log_softmax(a.masked_fill(~valid, _NEG), dim=-1)
    logp_t = torch.log_softmax(b.masked_fill(~valid, _NEG), dim=-1)
    kl = (logp_t.exp() * (logp_t - logp_s)).sum(-1)
    kl = torch.where(row_valid, kl, torch.zeros((), dtype=cdt, device=kl.device))
    if reduction == "none":
        return kl
    if reduction == "sum":
        return kl.sum()
    n = row_valid.expand_as(kl).sum().clamp(min=1)
    return kl.sum() / n
