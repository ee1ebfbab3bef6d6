"""`relation_kl`: argument checks, backend choice, and the autograd op shared by both backends.

The loss is usually reduced to a scalar, so the forward computes the gradients too (as fused linear
cross-entropy kernels do): the backward then only rescales them by the incoming scalar. Only
reduction="none" needs per-row weights, so there dK waits for the backward.
"""
import os

import torch

from . import torch_chunked

_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_REDUCTIONS = ("none", "sum", "mean")
_BACKENDS = ("auto", "triton", "torch")
D_MIN, D_MAX = 16, 256


def _triton_impl():
    from . import triton_relation_kl as impl  # imported late: TRITON_INTERPRET is read when the kernels are defined
    return impl


class _RelationKL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s_q, s_k, t_q, t_k, impl, scale_s, scale_t, causal, mask, reduction, grads, same):
        dk_now = grads and reduction != "none" and s_k.requires_grad
        kl, lse_s, lse_t, dq, dk = impl.forward(s_q, s_k, t_q, t_k, scale_s, scale_t, causal, mask,
                                                grads, dk_now, same)
        if reduction == "none":
            out = kl
        else:
            out = kl.sum()
            if reduction == "mean":
                out = out / torch.isfinite(lse_s).sum().clamp(min=1)
        if grads:
            ctx.args = (impl, scale_s, scale_t, causal, mask, reduction, same)
            ctx.save_for_backward(s_q, s_k, t_q, t_k, lse_s, lse_t)
            # Not saved tensors: backward scales them in place, which saved-tensor version checks forbid.
            ctx.grads = (dq, dk)
        return out

    @staticmethod
    def backward(ctx, g):
        impl, scale_s, scale_t, causal, mask, reduction, same = ctx.args
        s_q, s_k, t_q, t_k, lse_s, lse_t = ctx.saved_tensors
        if ctx.grads is None:
            # Another backward over a retained graph: the first one scaled dq and dk in place.
            _, _, _, dq, dk = impl.forward(s_q, s_k, t_q, t_k, scale_s, scale_t, causal, mask, True,
                                           reduction != "none" and s_k.requires_grad, same)
        else:
            dq, dk = ctx.grads
            ctx.grads = None
        if reduction == "none":
            g = g.float().contiguous()
            dq.mul_(g[..., None])
            if ctx.needs_input_grad[1]:
                dk = impl.grad_k(s_q, s_k, t_q, t_k, lse_s, lse_t, scale_s, scale_t, causal, mask, g,
                                 out=dq if same else None)
                if same:
                    dk = None
        else:
            if reduction == "mean":
                g = g / torch.isfinite(lse_s).sum().clamp(min=1)
            dq.mul_(g)
            if dk is not None:
                dk.mul_(g)
        return dq, dk, None, None, None, None, None, None, None, None, None, None


def _check(s_q, s_k, t_q, t_k, attention_mask, reduction, backend):
    names = ("s_q", "s_k", "t_q", "t_k")
    xs = (s_q, s_k, t_q, t_k)
    for name, x in zip(names, xs):
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"{name} must be a 4-d tensor [B, H, T, D], got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    B, Hq, T, Ds = s_q.shape
    if T == 0:
        raise ValueError("s_q has T = 0")
    for name, x in zip(names[1:], xs[1:]):
        if x.shape[0] != B or x.shape[2] != T:
            raise ValueError(f"{name} has shape {tuple(x.shape)}: B and T must match s_q's {(B, T)}")
        if x.dtype != s_q.dtype:
            raise ValueError(f"{name} has dtype {x.dtype}, s_q has {s_q.dtype}: they must match")
        if x.device != s_q.device:
            raise ValueError(f"{name} is on {x.device}, s_q on {s_q.device}")
    if s_q.dtype not in _DTYPES:
        raise ValueError(f"s_q has unsupported dtype {s_q.dtype}")
    if s_k.shape[3] != Ds:
        raise ValueError(f"s_k has D = {s_k.shape[3]}, s_q has {Ds}")
    if t_q.shape[1] != Hq:
        raise ValueError(f"t_q has {t_q.shape[1]} heads, s_q has {Hq}")
    if t_k.shape[3] != t_q.shape[3]:
        raise ValueError(f"t_k has D = {t_k.shape[3]}, t_q has {t_q.shape[3]}")
    for name, x in (("s_k", s_k), ("t_k", t_k)):
        if Hq % x.shape[1]:
            raise ValueError(f"{name} has {x.shape[1]} heads, which does not divide the {Hq} query heads")
    for name, x in (("s_q", s_q), ("t_q", t_q)):
        if not D_MIN <= x.shape[3] <= D_MAX:
            raise ValueError(f"{name} has head dim {x.shape[3]}; supported: {D_MIN}..{D_MAX}")
    if attention_mask is not None:
        if not isinstance(attention_mask, torch.Tensor) or tuple(attention_mask.shape) != (B, T):
            raise ValueError(f"attention_mask must be a [B, T] = {(B, T)} tensor")
        if attention_mask.device != s_q.device:
            raise ValueError(f"attention_mask is on {attention_mask.device}, s_q on {s_q.device}")
        if attention_mask.is_floating_point() or attention_mask.is_complex():
            raise ValueError(f"attention_mask must be bool or integer, got {attention_mask.dtype}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if backend == "triton":
        if s_q.dtype == torch.float64:
            raise ValueError("s_q is float64: only backend='torch' computes in float64")
        if not s_q.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
            raise ValueError("backend='triton' on CPU tensors needs TRITON_INTERPRET=1")


def relation_kl(s_q, s_k, t_q, t_k, *, scale_s=None, scale_t=None, causal=True, attention_mask=None,
                reduction="sum", backend="auto"):
    """KL(P_teacher ‖ P_student) between row-wise (causal) softmaxes of scale · q kᵀ, never materialised.

    s_q [B, Hq, T, Ds], s_k [B, Hk, T, Ds], t_q [B, Hq, T, Dt], t_k [B, Hkt, T, Dt]; query head h uses key
    head h // (Hq / Hk) (teacher: its own ratio). Rows masked out by `attention_mask` [B, T], or with no
    valid key, give 0. reduction: "none" → [B, Hq, T] float32 (float64 for float64 inputs), "sum", or
    "mean" over valid rows.
    Gradients reach s_q and s_k only. backend: "auto" (Triton for CUDA tensors, PyTorch otherwise),
    "triton" (also on CPU under TRITON_INTERPRET=1), or "torch".
    """
    _check(s_q, s_k, t_q, t_k, attention_mask, reduction, backend)
    same = s_q is s_k
    s_q = s_q.contiguous()
    s_k = s_q if same else s_k.contiguous()
    t_q, t_k = t_q.detach().contiguous(), t_k.detach().contiguous()
    mask = None if attention_mask is None else attention_mask.bool().contiguous()
    scale_s = s_q.shape[3] ** -0.5 if scale_s is None else float(scale_s)
    scale_t = t_q.shape[3] ** -0.5 if scale_t is None else float(scale_t)
    use_triton = backend == "triton" or (backend == "auto" and s_q.is_cuda and s_q.dtype != torch.float64)
    impl = _triton_impl() if use_triton else torch_chunked
    grads = torch.is_grad_enabled() and (s_q.requires_grad or s_k.requires_grad)
    return _RelationKL.apply(s_q, s_k, t_q, t_k, impl, scale_s, scale_t, causal, mask, reduction, grads,
                             same)
