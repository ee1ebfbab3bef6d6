"""Triton relation-KL kernels, after the fused-attention tutorial's structure.

Two kernels, no atomics, so results are bitwise reproducible:
- `_rows_kernel`, one program per (query block, b, h): an online pass for the student and teacher row
  log-sum-exps together, then a pass over the same keys with recomputed logits for the KL value and
  dq = scale_s · (P_s − P_t) k_s.
- `_cols_kernel`, one program per (key block, b, student key head): loops over the query heads of its GQA
  group and their query blocks, recomputes both logits from the stored log-sum-exps, and accumulates
  dk = scale_s · (g ∘ (P_s − P_t))ᵀ q_s.
Causal tiles above the diagonal are never visited; only diagonal (and ragged last) tiles pay for masks.
Logits are kept in base 2 (log2(e) folded into the scales) so every exponential is an exp2. Log-sum-exps
are stored in base 2, +inf for invalid rows, which makes all their probabilities exactly 0.
"""
import os

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


@triton.jit
def _dot(a, b, acc, DOT_PREC: tl.constexpr, UPCAST: tl.constexpr):
    # The interpreter (triton 3.9) multiplies bfloat16 tiles as their raw uint16 bits: give it float32.
    if UPCAST:
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    return tl.dot(a, b, acc, input_precision=DOT_PREC)


@triton.jit
def _round(x, dtype: tl.constexpr, UPCAST: tl.constexpr):
    """x rounded to `dtype` for a dot or a store; the interpreter truncates float32 → bfloat16, so there
    round to nearest even by hand and stay in float32 (exactly representable now)."""
    if UPCAST:
        bits = x.to(tl.uint32, bitcast=True)
        bits = (bits + (0x7FFF + ((bits >> 16) & 1))) & 0xFFFF0000
        y = bits.to(tl.float32, bitcast=True)
    else:
        y = x.to(dtype)
    return y


@triton.jit
def _load_rows(base, offs_r, offs_d, T, D: tl.constexpr, BLOCK_D: tl.constexpr, CHECK_ROWS: tl.constexpr):
    """A [rows, BLOCK_D] tile of a contiguous [T, D] matrix, zero outside it; masks only what can be out."""
    ptrs = base + offs_r[:, None] * D + offs_d[None, :]
    if CHECK_ROWS:
        if D == BLOCK_D:
            x = tl.load(ptrs, mask=offs_r[:, None] < T, other=0.0)
        else:
            x = tl.load(ptrs, mask=(offs_r[:, None] < T) & (offs_d[None, :] < D), other=0.0)
    else:
        if D == BLOCK_D:
            x = tl.load(ptrs)
        else:
            x = tl.load(ptrs, mask=offs_d[None, :] < D, other=0.0)
    return x


@triton.jit
def _key_tiles(sk_base, tk_base, MASK_b, n0, offs_n0, offs_ds, offs_dt, T,
               DS: tl.constexpr, DT: tl.constexpr, BLOCK_DS: tl.constexpr, BLOCK_DT: tl.constexpr,
               RAGGED: tl.constexpr, HAS_MASK: tl.constexpr):
    offs_n = n0 + offs_n0
    k_s = _load_rows(sk_base, offs_n, offs_ds, T, DS, BLOCK_DS, RAGGED)
    k_t = _load_rows(tk_base, offs_n, offs_dt, T, DT, BLOCK_DT, RAGGED)
    if HAS_MASK:
        key_ok = tl.load(MASK_b + offs_n, mask=offs_n < T, other=0) != 0
    else:
        key_ok = offs_n < T
    return offs_n, k_s, k_t, key_ok


@triton.jit
def _rows_lse(q_s, q_t, sk_base, tk_base, MASK_b, m_s, l_s, m_t, l_t, offs_m, lo, hi, T,
              qk_scale_s, qk_scale_t,
              DS: tl.constexpr, DT: tl.constexpr, BLOCK_DS: tl.constexpr, BLOCK_DT: tl.constexpr,
              BLOCK_N: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr,
              DOT_PREC: tl.constexpr, UPCAST: tl.constexpr):
    """Online max / sum of exp2 over key blocks [lo, hi) for student and teacher at once."""
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_ds = tl.arange(0, BLOCK_DS)
    offs_dt = tl.arange(0, BLOCK_DT)
    for n0 in range(lo, hi, BLOCK_N):
        offs_n, k_s, k_t, key_ok = _key_tiles(sk_base, tk_base, MASK_b, n0, offs_n0, offs_ds, offs_dt, T,
                                              DS, DT, BLOCK_DS, BLOCK_DT, MASKED, HAS_MASK)
        a = _dot(q_s, tl.trans(k_s), None, DOT_PREC, UPCAST) * qk_scale_s
        b = _dot(q_t, tl.trans(k_t), None, DOT_PREC, UPCAST) * qk_scale_t
        if MASKED or HAS_MASK:
            ok = key_ok[None, :]
            if MASKED and CAUSAL:
                ok = ok & (offs_n[None, :] <= offs_m[:, None])
            a = tl.where(ok, a, float("-inf"))
            b = tl.where(ok, b, float("-inf"))
            # Rows with no valid key yet keep m = -inf; subtract 0 there so -inf - -inf never appears.
            m_s_new = tl.maximum(m_s, tl.max(a, 1))
            m_t_new = tl.maximum(m_t, tl.max(b, 1))
            sub_s = tl.where(m_s_new == float("-inf"), 0.0, m_s_new)
            sub_t = tl.where(m_t_new == float("-inf"), 0.0, m_t_new)
        else:
            m_s_new = tl.maximum(m_s, tl.max(a, 1))
            m_t_new = tl.maximum(m_t, tl.max(b, 1))
            sub_s = m_s_new
            sub_t = m_t_new
        l_s = l_s * tl.exp2(m_s - sub_s) + tl.sum(tl.exp2(a - sub_s[:, None]), 1)
        l_t = l_t * tl.exp2(m_t - sub_t) + tl.sum(tl.exp2(b - sub_t[:, None]), 1)
        m_s = m_s_new
        m_t = m_t_new
    return m_s, l_s, m_t, l_t


@triton.jit
def _rows_grad(q_s, q_t, sk_base, tk_base, MASK_b, m_s, ll_s, m_t, ll_t, kl, dq, offs_m, lo, hi, T,
               qk_scale_s, qk_scale_t,
               DS: tl.constexpr, DT: tl.constexpr, BLOCK_DS: tl.constexpr, BLOCK_DT: tl.constexpr,
               BLOCK_N: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr,
               COMPUTE_DQ: tl.constexpr, DOT_PREC: tl.constexpr, UPCAST: tl.constexpr):
    """Σ_j P_t (log P_t − log P_s) and Σ_j (P_s − P_t) k_s over key blocks [lo, hi).

    log P = (logit − m) − log l, kept apart rather than as logit − lse: near convergence the KL is far
    smaller than the logits, and a rounded lse would swamp it.
    """
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_ds = tl.arange(0, BLOCK_DS)
    offs_dt = tl.arange(0, BLOCK_DT)
    for n0 in range(lo, hi, BLOCK_N):
        offs_n, k_s, k_t, key_ok = _key_tiles(sk_base, tk_base, MASK_b, n0, offs_n0, offs_ds, offs_dt, T,
                                              DS, DT, BLOCK_DS, BLOCK_DT, MASKED, HAS_MASK)
        log_p_s = (_dot(q_s, tl.trans(k_s), None, DOT_PREC, UPCAST) * qk_scale_s - m_s[:, None]) - ll_s[:, None]
        log_p_t = (_dot(q_t, tl.trans(k_t), None, DOT_PREC, UPCAST) * qk_scale_t - m_t[:, None]) - ll_t[:, None]
        p_s = tl.exp2(log_p_s)
        p_t = tl.exp2(log_p_t)
        if MASKED or HAS_MASK:
            ok = key_ok[None, :]
            if MASKED and CAUSAL:
                ok = ok & (offs_n[None, :] <= offs_m[:, None])
            p_s = tl.where(ok, p_s, 0.0)
            p_t = tl.where(ok, p_t, 0.0)
        kl += tl.sum(p_t * (log_p_t - log_p_s), 1)
        if COMPUTE_DQ:
            dq = _dot(_round(p_s - p_t, k_s.dtype, UPCAST), k_s, dq, DOT_PREC, UPCAST)
    return kl, dq


@triton.jit
def _rows_kernel(SQ, SK, TQ, TK, MASK, LSE_S, LSE_T, KL, DQ,
                 T, HQ, HK, HKT, qk_scale_s, qk_scale_t, scale_s,
                 DS: tl.constexpr, DT: tl.constexpr, BLOCK_DS: tl.constexpr, BLOCK_DT: tl.constexpr,
                 CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr, COMPUTE_DQ: tl.constexpr,
                 DOT_PREC: tl.constexpr, UPCAST: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    # Causal rows near the end have the most keys: start those first so the tail of the grid is short.
    pid_m = tl.num_programs(0) - 1 - tl.program_id(0)
    bh = tl.program_id(1)
    b_idx = bh // HQ
    h = bh % HQ
    m0 = pid_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_ds = tl.arange(0, BLOCK_DS)
    offs_dt = tl.arange(0, BLOCK_DT)
    row = bh.to(tl.int64) * T
    q_s = _load_rows(SQ + row * DS, offs_m, offs_ds, T, DS, BLOCK_DS, True)
    q_t = _load_rows(TQ + row * DT, offs_m, offs_dt, T, DT, BLOCK_DT, True)
    sk_base = SK + (b_idx * HK + h // (HQ // HK)).to(tl.int64) * T * DS
    tk_base = TK + (b_idx * HKT + h // (HQ // HKT)).to(tl.int64) * T * DT
    MASK_b = MASK + b_idx.to(tl.int64) * T

    # Key blocks [0, lo) need no causal or bounds mask; [lo, hi) hold the diagonal or the ragged end.
    if CAUSAL:
        lo = m0
        hi = tl.minimum(m0 + BLOCK_M, T)
    else:
        lo = (T // BLOCK_N) * BLOCK_N
        hi = T

    m_s = tl.full([BLOCK_M], float("-inf"), tl.float32)
    m_t = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_s = tl.zeros([BLOCK_M], tl.float32)
    l_t = tl.zeros([BLOCK_M], tl.float32)
    m_s, l_s, m_t, l_t = _rows_lse(q_s, q_t, sk_base, tk_base, MASK_b, m_s, l_s, m_t, l_t, offs_m, 0, lo, T,
                                   qk_scale_s, qk_scale_t, DS, DT, BLOCK_DS, BLOCK_DT, BLOCK_N,
                                   False, CAUSAL, HAS_MASK, DOT_PREC, UPCAST)
    m_s, l_s, m_t, l_t = _rows_lse(q_s, q_t, sk_base, tk_base, MASK_b, m_s, l_s, m_t, l_t, offs_m, lo, hi, T,
                                   qk_scale_s, qk_scale_t, DS, DT, BLOCK_DS, BLOCK_DT, BLOCK_N,
                                   True, CAUSAL, HAS_MASK, DOT_PREC, UPCAST)
    row_ok = l_s > 0
    if HAS_MASK:
        row_ok = row_ok & (tl.load(MASK_b + offs_m, mask=offs_m < T, other=0) != 0)
    # Invalid rows: m = 0, log l = +inf, so all their probabilities are exactly 0.
    m_s = tl.where(row_ok, m_s, 0.0)
    m_t = tl.where(row_ok, m_t, 0.0)
    ll_s = tl.where(row_ok, tl.log2(l_s), float("inf"))
    ll_t = tl.where(row_ok, tl.log2(l_t), float("inf"))

    kl = tl.zeros([BLOCK_M], tl.float32)
    dq = tl.zeros([BLOCK_M, BLOCK_DS], tl.float32)
    kl, dq = _rows_grad(q_s, q_t, sk_base, tk_base, MASK_b, m_s, ll_s, m_t, ll_t, kl, dq, offs_m, 0, lo, T,
                        qk_scale_s, qk_scale_t, DS, DT, BLOCK_DS, BLOCK_DT, BLOCK_N,
                        False, CAUSAL, HAS_MASK, COMPUTE_DQ, DOT_PREC, UPCAST)
    kl, dq = _rows_grad(q_s, q_t, sk_base, tk_base, MASK_b, m_s, ll_s, m_t, ll_t, kl, dq, offs_m, lo, hi, T,
                        qk_scale_s, qk_scale_t, DS, DT, BLOCK_DS, BLOCK_DT, BLOCK_N,
                        True, CAUSAL, HAS_MASK, COMPUTE_DQ, DOT_PREC, UPCAST)

    in_t = offs_m < T
    tl.store(LSE_S + row + offs_m, m_s + ll_s, mask=in_t)
    tl.store(LSE_T + row + offs_m, m_t + ll_t, mask=in_t)
    # ln 2: base-2 logits back to nats.
    tl.store(KL + row + offs_m, tl.where(row_ok, kl * 0.6931471805599453, 0.0), mask=in_t)
    if COMPUTE_DQ:
        dq_ptrs = DQ + row * DS + offs_m[:, None] * DS + offs_ds[None, :]
        tl.store(dq_ptrs, _round(dq * scale_s, DQ.dtype.element_ty, UPCAST),
                 mask=in_t[:, None] & (offs_ds[None, :] < DS))


@triton.jit
def _cols_inner(k_s, k_t, sq_base, tq_base, LSE_S_h, LSE_T_h, G_h, dk, offs_n, lo, hi, T,
                qk_scale_s, qk_scale_t,
                DS: tl.constexpr, DT: tl.constexpr, BLOCK_DS: tl.constexpr, BLOCK_DT: tl.constexpr,
                BLOCK_M: tl.constexpr, MASKED: tl.constexpr, HAS_G: tl.constexpr, DOT_PREC: tl.constexpr,
                UPCAST: tl.constexpr):
    """dk += (g ∘ (P_s − P_t))ᵀ q_s over query blocks [lo, hi) of one query head; tiles are kept transposed."""
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_ds = tl.arange(0, BLOCK_DS)
    offs_dt = tl.arange(0, BLOCK_DT)
    for m0 in range(lo, hi, BLOCK_M):
        offs_m = m0 + offs_m0
        in_t = offs_m < T
        q_s = _load_rows(sq_base, offs_m, offs_ds, T, DS, BLOCK_DS, True)
        q_t = _load_rows(tq_base, offs_m, offs_dt, T, DT, BLOCK_DT, True)
        lse_s = tl.load(LSE_S_h + offs_m, mask=in_t, other=float("inf"))
        lse_t = tl.load(LSE_T_h + offs_m, mask=in_t, other=float("inf"))
        a = _dot(k_s, tl.trans(q_s), None, DOT_PREC, UPCAST) * qk_scale_s
        b = _dot(k_t, tl.trans(q_t), None, DOT_PREC, UPCAST) * qk_scale_t
        ds = tl.exp2(a - lse_s[None, :]) - tl.exp2(b - lse_t[None, :])
        if MASKED:
            ds = tl.where(offs_n[:, None] <= offs_m[None, :], ds, 0.0)
        if HAS_G:
            ds = ds * tl.load(G_h + offs_m, mask=in_t, other=0.0)[None, :]
        dk = _dot(_round(ds, q_s.dtype, UPCAST), q_s, dk, DOT_PREC, UPCAST)
    return dk


@triton.jit
def _cols_kernel(SQ, SK, TQ, TK, MASK, LSE_S, LSE_T, G, DK,
                 T, HQ, HK, HKT, qk_scale_s, qk_scale_t, scale_s,
                 DS: tl.constexpr, DT: tl.constexpr, BLOCK_DS: tl.constexpr, BLOCK_DT: tl.constexpr,
                 CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr, HAS_G: tl.constexpr, ACCUMULATE: tl.constexpr,
                 DOT_PREC: tl.constexpr, UPCAST: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    # Causal key blocks near the start see the most queries; program 0 gets key block 0.
    pid_n = tl.program_id(0)
    bhk = tl.program_id(1)
    b_idx = bhk // HK
    hk = bhk % HK
    n0 = pid_n * BLOCK_N
    offs_n = n0 + tl.arange(0, BLOCK_N)
    offs_ds = tl.arange(0, BLOCK_DS)
    offs_dt = tl.arange(0, BLOCK_DT)
    k_s = _load_rows(SK + bhk.to(tl.int64) * T * DS, offs_n, offs_ds, T, DS, BLOCK_DS, True)
    dk = tl.zeros([BLOCK_N, BLOCK_DS], tl.float32)
    group = HQ // HK
    for gi in range(group):
        h = hk * group + gi
        row = (b_idx * HQ + h).to(tl.int64) * T
        tk_base = TK + (b_idx * HKT + h // (HQ // HKT)).to(tl.int64) * T * DT
        k_t = _load_rows(tk_base, offs_n, offs_dt, T, DT, BLOCK_DT, True)
        if CAUSAL:
            # Query blocks [n0, n0 + BLOCK_N) straddle the diagonal; later ones see every key of this block.
            mid = tl.minimum(n0 + BLOCK_N, T)
            dk = _cols_inner(k_s, k_t, SQ + row * DS, TQ + row * DT, LSE_S + row, LSE_T + row, G + row, dk,
                             offs_n, n0, mid, T, qk_scale_s, qk_scale_t, DS, DT, BLOCK_DS, BLOCK_DT, BLOCK_M,
                             True, HAS_G, DOT_PREC, UPCAST)
        else:
            mid = 0
        dk = _cols_inner(k_s, k_t, SQ + row * DS, TQ + row * DT, LSE_S + row, LSE_T + row, G + row, dk,
                         offs_n, mid, T, T, qk_scale_s, qk_scale_t, DS, DT, BLOCK_DS, BLOCK_DT, BLOCK_M,
                         False, HAS_G, DOT_PREC, UPCAST)
    dk = dk * scale_s
    if HAS_MASK:
        # A masked key is in no row's softmax, so its gradient is 0 (its logits above were never valid).
        key_ok = tl.load(MASK + b_idx.to(tl.int64) * T + offs_n, mask=offs_n < T, other=0) != 0
        dk = tl.where(key_ok[:, None], dk, 0.0)
    dk_ptrs = DK + bhk.to(tl.int64) * T * DS + offs_n[:, None] * DS + offs_ds[None, :]
    out_mask = (offs_n[:, None] < T) & (offs_ds[None, :] < DS)
    if ACCUMULATE:
        dk += tl.load(dk_ptrs, mask=out_mask, other=0.0).to(tl.float32)
    tl.store(dk_ptrs, _round(dk, DK.dtype.element_ty, UPCAST), mask=out_mask)


def _configs(pairs):
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s) for m, n, w, s in pairs]


# Rows kernel: BLOCK_M % BLOCK_N == 0 so that key blocks below the diagonal are whole.
_ROWS_CONFIGS = _configs([(128, 64, 8, 3), (128, 64, 4, 3), (128, 32, 4, 3), (64, 64, 4, 3),
                          (128, 128, 8, 2), (64, 32, 4, 4)])
# Cols kernel: BLOCK_N % BLOCK_M == 0 so that query blocks right of the diagonal are whole.
_COLS_CONFIGS = _configs([(64, 128, 8, 3), (64, 128, 4, 3), (32, 128, 4, 3), (64, 64, 4, 3),
                          (128, 128, 8, 2), (32, 64, 4, 4)])
# Head dims above 128: tiles small enough for shared memory (not benchmarked).
_ROWS_WIDE = _configs([(64, 32, 4, 2), (32, 32, 4, 2)])
_COLS_WIDE = _configs([(32, 64, 4, 2), (32, 32, 4, 2)])
# Fixed tiles: the interpreter (speed is moot) and float32 (4-byte tiles overflow shared memory at the
# bf16 sizes; float32 is for checking, not for speed). Each entry: (rows, cols).
_FIXED = {"interpret": ({"BLOCK_M": 32, "BLOCK_N": 16}, {"BLOCK_M": 16, "BLOCK_N": 32}),
          "fp32": ({"BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 2},
                   {"BLOCK_M": 32, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2}),
          "fp32_wide": ({"BLOCK_M": 32, "BLOCK_N": 32, "num_warps": 4, "num_stages": 1},) * 2}

_ROWS_KEY = ["T", "DS", "DT", "CAUSAL", "HAS_MASK", "COMPUTE_DQ"]
_COLS_KEY = ["T", "DS", "DT", "CAUSAL", "HAS_MASK", "HAS_G", "ACCUMULATE"]
_KERNELS = (_rows_kernel, _cols_kernel)
# TUNED[kernel][wide]. restore_value: with ACCUMULATE the cols kernel adds into DK, so each tuning run must
# start from the same DK.
TUNED = ((triton.autotune(_ROWS_CONFIGS, key=_ROWS_KEY)(_rows_kernel),
          triton.autotune(_ROWS_WIDE, key=_ROWS_KEY)(_rows_kernel)),
         (triton.autotune(_COLS_CONFIGS, key=_COLS_KEY, restore_value=["DK"])(_cols_kernel),
          triton.autotune(_COLS_WIDE, key=_COLS_KEY, restore_value=["DK"])(_cols_kernel)))


def _common(s_q, s_k, t_q, t_k, scale_s, scale_t, causal, mask):
    B, HQ, T, DS = s_q.shape
    DT = t_q.shape[3]
    dummy = s_q.new_empty(1, dtype=torch.int8)
    args = dict(T=T, HQ=HQ, HK=s_k.shape[1], HKT=t_k.shape[1], qk_scale_s=scale_s * LOG2E,
                qk_scale_t=scale_t * LOG2E, scale_s=scale_s, DS=DS, DT=DT,
                BLOCK_DS=max(16, triton.next_power_of_2(DS)), BLOCK_DT=max(16, triton.next_power_of_2(DT)),
                CAUSAL=bool(causal), HAS_MASK=mask is not None,
                # float32: three-pass tf32 on tensor cores is as exact as float32 FMA, at a fraction of the time.
                DOT_PREC=("ieee" if INTERPRET else "tf32x3") if s_q.dtype == torch.float32 else None,
                UPCAST=INTERPRET and s_q.dtype == torch.bfloat16)
    return args, (dummy if mask is None else mask.view(torch.int8))


def _launch(which, grid_rows, args, *tensors):
    """Autotuned launch, or fixed tiles under the interpreter and for float32 (`which`: 0 rows, 1 cols)."""
    grid = lambda meta: grid_rows(meta["BLOCK_M"], meta["BLOCK_N"])  # noqa: E731
    wide = max(args["DS"], args["DT"]) > 128
    if INTERPRET:
        _KERNELS[which][grid](*tensors, **args, **_FIXED["interpret"][which])
    elif tensors[0].dtype == torch.float32:
        _KERNELS[which][grid](*tensors, **args, **_FIXED["fp32_wide" if wide else "fp32"][which])
    else:
        TUNED[which][wide][grid](*tensors, **args)


def forward(s_q, s_k, t_q, t_k, scale_s, scale_t, causal, mask, grads, dk_too, same):
    """Same contract as `torch_chunked.forward`; log-sum-exps come back in base 2."""
    B, HQ, T, DS = s_q.shape
    args, mask8 = _common(s_q, s_k, t_q, t_k, scale_s, scale_t, causal, mask)
    lse_s = torch.empty(B, HQ, T, dtype=torch.float32, device=s_q.device)
    lse_t = torch.empty_like(lse_s)
    kl = torch.empty_like(lse_s)
    dq = torch.empty_like(s_q) if grads else lse_s
    _launch(0, lambda bm, bn: (triton.cdiv(T, bm), B * HQ), dict(args, COMPUTE_DQ=grads),
            s_q, s_k, t_q, t_k, mask8, lse_s, lse_t, kl, dq)
    dk = None
    if grads and dk_too:
        dk = grad_k(s_q, s_k, t_q, t_k, lse_s, lse_t, scale_s, scale_t, causal, mask, None,
                    out=dq if same else None)
        if same:
            dk = None
    return kl, lse_s, lse_t, (dq if grads else None), dk


def grad_k(s_q, s_k, t_q, t_k, lse_s, lse_t, scale_s, scale_t, causal, mask, g, out=None):
    """dk with per-row weights g [B, Hq, T] (None: all 1); added into `out` when given (self-relation)."""
    B, HK, T, _ = s_k.shape
    args, mask8 = _common(s_q, s_k, t_q, t_k, scale_s, scale_t, causal, mask)
    dk = torch.empty_like(s_k) if out is None else out
    _launch(1, lambda bm, bn: (triton.cdiv(T, bn), B * HK),
            dict(args, HAS_G=g is not None, ACCUMULATE=out is not None),
            s_q, s_k, t_q, t_k, mask8, lse_s, lse_t, lse_s if g is None else g, dk)
    return dk
