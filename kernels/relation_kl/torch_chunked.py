"""CPU path: the relation KL in plain PyTorch, a block of query rows at a time.

Each block holds [B, Hq, C, T] logits with C chosen so that block stays a few tens of MB, so memory is
O(T·D) like the Triton path, never T×T. Computes in float32 (float64 for float64 inputs). Log-sum-exps are
natural-log, +inf for invalid rows, which makes every probability of such a row exactly 0.
"""
import torch

_BLOCK_ELEMS = 1 << 22


def _rows_per_block(B, H, T):
    return max(1, min(T, _BLOCK_ELEMS // (B * H * T)))


def _gqa_logits(q, k, scale):
    """scale · q kᵀ with q [B, Hq, C, D], k [B, Hk, N, D] → [B, Hq, C, N], query head h on key head h // G."""
    B, Hq, C, D = q.shape
    Hk = k.shape[1]
    out = q.reshape(B, Hk, Hq // Hk, C, D) @ k[:, :, None].transpose(-1, -2)
    return out.reshape(B, Hq, C, -1).mul_(scale)


def _gqa_pk(p, k):
    """p [B, Hq, C, N] @ k [B, Hk, N, D] → [B, Hq, C, D]."""
    B, Hq, C, N = p.shape
    Hk = k.shape[1]
    return (p.reshape(B, Hk, Hq // Hk, C, N) @ k[:, :, None]).reshape(B, Hq, C, -1)


def _gqa_ptq(p, q, Hk):
    """pᵀ q summed over each key head's query group: p [B, Hq, C, N], q [B, Hq, C, D] → [B, Hk, N, D]."""
    B, Hq, C, N = p.shape
    G = Hq // Hk
    pt = p.reshape(B, Hk, G, C, N).transpose(-1, -2)
    return (pt @ q.reshape(B, Hk, G, C, -1)).sum(2)


class _Block:
    """Logits, validity and probabilities of query rows [i0, i1) against keys [0, n)."""

    def __init__(self, s_q, s_k, t_q, t_k, i0, i1, scale_s, scale_t, causal, mask, cdt):
        T = s_q.shape[2]
        n = i1 if causal else T
        self.n = n
        self.q = s_q[:, :, i0:i1].to(cdt)
        self.k = s_k[:, :, :n].to(cdt)
        self.a = _gqa_logits(self.q, self.k, scale_s)
        self.b = _gqa_logits(t_q[:, :, i0:i1].to(cdt), t_k[:, :, :n].to(cdt), scale_t)
        dev = s_q.device
        valid = torch.ones(1, 1, i1 - i0, n, dtype=torch.bool, device=dev)
        if causal:
            valid = valid.tril(diagonal=i0)
        if mask is not None:
            valid = valid & mask[:, None, None, :n]
        self.valid = valid
        row_valid = valid.any(-1)
        if mask is not None:
            row_valid = row_valid & mask[:, None, i0:i1]
        self.row_valid = row_valid

    def stats(self):
        """Row max m and log l = log Σ exp(logit − m) of student and teacher; m = 0, log l = +inf if invalid."""
        out = []
        for x in (self.a, self.b):
            x = x.masked_fill(~self.valid, float("-inf"))
            m = torch.where(self.row_valid, x.amax(-1), 0.0)
            log_l = (x - m[..., None]).exp().sum(-1).log()
            out += [m, torch.where(self.row_valid, log_l, float("inf"))]
        return out

    def log_probs(self, m_s, log_l_s, m_t, log_l_t):
        """(logit − m) − log l, kept apart: a rounded lse would swamp a KL far smaller than the logits."""
        return ((self.a - m_s[..., None]) - log_l_s[..., None],
                (self.b - m_t[..., None]) - log_l_t[..., None])

    def probs(self, log_p_s, log_p_t):
        return log_p_s.exp().masked_fill(~self.valid, 0.0), log_p_t.exp().masked_fill(~self.valid, 0.0)


def _cdt(x):
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def forward(s_q, s_k, t_q, t_k, scale_s, scale_t, causal, mask, grads, dk_too, same):
    """Per-row KL, log-sum-exps and, if `grads`, dq (and dk with unit row weights if `dk_too`).

    With `same` (s_q is s_k) the dk part is added into dq and dk is returned as None.
    """
    B, Hq, T, Ds = s_q.shape
    Hk = s_k.shape[1]
    cdt = _cdt(s_q)
    kl = torch.empty(B, Hq, T, dtype=cdt, device=s_q.device)
    lse_s = torch.empty(B, Hq, T, dtype=cdt, device=s_q.device)
    lse_t = torch.empty_like(lse_s)
    dq = torch.zeros(B, Hq, T, Ds, dtype=cdt, device=s_q.device) if grads else None
    dk = torch.zeros(B, Hk, T, Ds, dtype=cdt, device=s_q.device) if grads and dk_too else None
    C = _rows_per_block(B, Hq, T)
    for i0 in range(0, T, C):
        i1 = min(T, i0 + C)
        blk = _Block(s_q, s_k, t_q, t_k, i0, i1, scale_s, scale_t, causal, mask, cdt)
        m_s, log_l_s, m_t, log_l_t = blk.stats()
        lse_s[:, :, i0:i1], lse_t[:, :, i0:i1] = m_s + log_l_s, m_t + log_l_t
        log_p_s, log_p_t = blk.log_probs(m_s, log_l_s, m_t, log_l_t)
        p_s, p_t = blk.probs(log_p_s, log_p_t)
        # Masked entries have p_t = 0 against a finite log-ratio; invalid rows (NaN) are replaced by 0.
        value = (p_t * (log_p_t - log_p_s)).sum(-1)
        kl[:, :, i0:i1] = torch.where(blk.row_valid, value, 0.0)
        if grads:
            ds = p_s - p_t
            dq[:, :, i0:i1] = _gqa_pk(ds, blk.k) * scale_s
            if dk_too:
                dk[:, :, :blk.n] += _gqa_ptq(ds, blk.q, Hk) * scale_s
    if grads:
        if dk_too and same:
            dq += dk
            dk = None
        dq = dq.to(s_q.dtype)
        dk = None if dk is None else dk.to(s_k.dtype)
    return kl, lse_s, lse_t, dq, dk


def grad_k(s_q, s_k, t_q, t_k, lse_s, lse_t, scale_s, scale_t, causal, mask, g, out=None):
    """dk with per-row weights g [B, Hq, T]; added into `out` (the self-relation's dq) when given."""
    B, Hq, T, Ds = s_q.shape
    Hk = s_k.shape[1]
    cdt = _cdt(s_q)
    dk = torch.zeros(B, Hk, T, Ds, dtype=cdt, device=s_q.device)
    C = _rows_per_block(B, Hq, T)
    for i0 in range(0, T, C):
        i1 = min(T, i0 + C)
        blk = _Block(s_q, s_k, t_q, t_k, i0, i1, scale_s, scale_t, causal, mask, cdt)
        zero = lse_s.new_zeros(())
        p_s, p_t = blk.probs(*blk.log_probs(lse_s[:, :, i0:i1], zero, lse_t[:, :, i0:i1], zero))
        ds = (p_s - p_t) * g[:, :, i0:i1, None].to(cdt)
        dk[:, :, :blk.n] += _gqa_ptq(ds, blk.q, Hk) * scale_s
    if out is None:
        return dk.to(s_k.dtype)
    return out.copy_(out.to(cdt).add_(dk))
