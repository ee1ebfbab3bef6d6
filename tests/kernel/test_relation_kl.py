"""relation_kl against the materialised float64 reference, on both backends (Triton via the interpreter)."""
import pytest
import torch

from relation_kl import relation_kl, relation_kl_reference

BACKENDS = ["torch", "triton"]
# (loss, gradient) relative-error bounds, norm-wise, against float64 on the same (rounded) inputs.
TOL = {torch.float32: (1e-5, 1e-4), torch.bfloat16: (1e-4, 5e-3), torch.float16: (1e-4, 2e-3)}

# name: B, Hq, Hk, Hkt, T, Ds, Dt, causal, mask, reduction
CASES = {
    "T1": (1, 2, 2, 2, 1, 16, 16, True, None, "sum"),
    "odd_T_below_block_gqa2": (2, 2, 1, 2, 13, 64, 64, True, None, "mean"),
    "above_block_gqa4_pad": (1, 4, 1, 1, 70, 16, 16, True, "right", "none"),
    "ds_ne_dt_d128": (1, 2, 2, 1, 33, 128, 64, True, None, "sum"),
    "noncausal_mask_gqa2": (2, 4, 2, 4, 50, 32, 16, False, "random", "none"),
    "masked_rows": (3, 2, 1, 1, 40, 16, 32, True, "left_and_empty", "mean"),
    "noncausal_d_not_pow2": (1, 2, 2, 2, 30, 48, 80, False, None, "sum"),
    "causal_random_mask_gqa4_teacher2": (2, 4, 1, 2, 37, 64, 16, True, "random", "sum"),
    "d256": (1, 1, 1, 1, 20, 256, 256, True, None, "sum"),
}


def _mask(kind, B, T, gen):
    if kind is None:
        return None
    if kind == "right":  # right padding
        m = torch.ones(B, T, dtype=torch.bool)
        m[:, T - T // 3:] = False
        return m
    if kind == "random":
        return torch.rand(B, T, generator=gen) > 0.3
    if kind == "left_and_empty":  # left padding, and a sequence with no valid position at all
        m = torch.ones(B, T, dtype=torch.bool)
        m[0, :7] = False
        m[1] = False
        return m
    raise ValueError(kind)


def _inputs(case, dtype, seed=0):
    B, Hq, Hk, Hkt, T, Ds, Dt, causal, mask, _ = case
    gen = torch.Generator().manual_seed(seed)

    def rnd(h, d):
        return torch.randn(B, h, T, d, generator=gen).to(dtype)

    return rnd(Hq, Ds), rnd(Hk, Ds), rnd(Hq, Dt), rnd(Hkt, Dt), _mask(mask, B, T, gen)


def _rel(x, ref):
    return ((x.double() - ref).norm() / ref.norm().clamp(min=1e-30)).item()


def _check_against_reference(s_q, s_k, t_q, t_k, mask, causal, reduction, backend, dtype, same=False):
    tol_loss, tol_grad = TOL[dtype]
    x = s_q.clone().requires_grad_()
    y = x if same else s_k.clone().requires_grad_()
    out = relation_kl(x, y, t_q, t_k, causal=causal, attention_mask=mask, reduction=reduction, backend=backend)
    x64 = s_q.double().requires_grad_()
    y64 = x64 if same else s_k.double().requires_grad_()
    ref = relation_kl_reference(x64, y64, t_q.double(), t_k.double(), causal=causal, attention_mask=mask,
                                reduction=reduction)
    assert torch.isfinite(out).all()
    if reduction == "none":
        assert out.shape == ref.shape and out.dtype == torch.float32
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    else:
        assert out.dim() == 0
        g = torch.tensor(1.7)
    assert _rel(out, ref) <= tol_loss
    grads = torch.autograd.grad(out, (x,) if same else (x, y), g)
    refs = torch.autograd.grad(ref, (x64,) if same else (x64, y64), g.double())
    for got, want in zip(grads, refs):
        assert got.dtype == dtype and got.shape == want.shape
        assert torch.isfinite(got).all()
        assert _rel(got, want) <= tol_grad, _rel(got, want)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy in the interpreter: inf - inf in dropped lanes
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference(name, dtype, backend):
    case = CASES[name]
    s_q, s_k, t_q, t_k, mask = _inputs(case, dtype)
    _check_against_reference(s_q, s_k, t_q, t_k, mask, case[7], case[9], backend, dtype)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_reductions_with_padding(reduction, backend):
    s_q, s_k, t_q, t_k, mask = _inputs((2, 2, 1, 2, 45, 32, 16, True, "right", reduction), torch.float32)
    mask[1, :20] = False  # left padding too
    _check_against_reference(s_q, s_k, t_q, t_k, mask, True, reduction, backend, torch.float32)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_fp16(backend):
    case = CASES["above_block_gqa4_pad"]
    s_q, s_k, t_q, t_k, mask = _inputs(case, torch.float16)
    _check_against_reference(s_q, s_k, t_q, t_k, mask, True, "sum", backend, torch.float16)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_self_relation_sums_both_paths(reduction, dtype, backend):
    """relation_kl(x, x, y, y): x.grad is the sum of the query-side and key-side gradients."""
    B, H, T, Ds, Dt = 1, 2, 45, 32, 64
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(B, H, T, Ds, generator=gen).to(dtype)
    y = torch.randn(B, H, T, Dt, generator=gen).to(dtype)
    _check_against_reference(x, x, y, y, None, True, reduction, backend, dtype, same=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("same", [False, True], ids=["qk", "self"])
def test_gradients_bitwise_reproducible(same, backend):
    s_q, s_k, t_q, t_k, mask = _inputs((2, 2, 1, 2, 37, 32, 16, True, "random", "sum"), torch.bfloat16)
    if same:
        s_k, t_k = s_q, t_q

    def run():
        x = s_q.clone().requires_grad_()
        y = x if same else s_k.clone().requires_grad_()
        out = relation_kl(x, y, t_q, t_k, attention_mask=mask, backend=backend)
        return (out,) + torch.autograd.grad(out, (x,) if same else (x, y))

    for a, b in zip(run(), run()):
        assert torch.equal(a, b)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_all_rows_masked_gives_zero(backend):
    s_q, s_k, t_q, t_k, _ = _inputs(CASES["T1"][:4] + (9, 16, 16, True, None, "mean"), torch.float32)
    x = s_q.clone().requires_grad_()
    mask = torch.zeros(1, 9, dtype=torch.bool)
    for reduction in ("none", "sum", "mean"):
        out = relation_kl(x, s_k, t_q, t_k, attention_mask=mask, reduction=reduction, backend=backend)
        assert torch.equal(out, torch.zeros_like(out))
        (g,) = torch.autograd.grad(out.sum(), x)
        assert torch.equal(g, torch.zeros_like(g))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_no_grad_forward_and_teacher_gets_no_grad(backend):
    s_q, s_k, t_q, t_k, mask = _inputs((1, 2, 1, 2, 33, 16, 16, False, "random", "sum"), torch.float32)
    with torch.no_grad():
        plain = relation_kl(s_q, s_k, t_q, t_k, causal=False, attention_mask=mask, backend=backend)
    t_q.requires_grad_()
    x = s_q.clone().requires_grad_()
    out = relation_kl(x, s_k, t_q, t_k, causal=False, attention_mask=mask, backend=backend)
    out.backward()
    assert torch.equal(plain, out.detach())
    assert t_q.grad is None and x.grad is not None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_inputs(backend):
    s_q, s_k, t_q, t_k, _ = _inputs(CASES["odd_T_below_block_gqa2"], torch.float32)
    # Same values, laid out [B, T, H, D] and viewed as [B, H, T, D].
    views = [x.transpose(1, 2).contiguous().transpose(1, 2) for x in (s_q, s_k, t_q, t_k)]
    assert not views[0].is_contiguous()
    got = relation_kl(*views, backend=backend)
    want = relation_kl(s_q, s_k, t_q, t_k, backend=backend)
    assert torch.equal(got, want)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_backward_twice_over_a_retained_graph(reduction):
    s_q, s_k, t_q, t_k, _ = _inputs(CASES["odd_T_below_block_gqa2"], torch.float32)
    x = s_q.clone().requires_grad_()
    out = relation_kl(x, s_k, t_q, t_k, reduction=reduction, backend="torch").sum()
    (first,) = torch.autograd.grad(out, x, retain_graph=True)
    (second,) = torch.autograd.grad(out, x)
    assert torch.equal(first, second)


@pytest.mark.parametrize("reduction", ["sum", "none"])
@pytest.mark.parametrize("same", [False, True], ids=["qk", "self"])
def test_gradcheck_cpu_path(same, reduction):
    gen = torch.Generator().manual_seed(5)
    B, T = 2, 5
    s_q = torch.randn(B, 2, T, 16, generator=gen, dtype=torch.float64, requires_grad=True)
    s_k = s_q if same else torch.randn(B, 1, T, 16, generator=gen, dtype=torch.float64, requires_grad=True)
    t_q = torch.randn(B, 2, T, 24, generator=gen, dtype=torch.float64)
    t_k = t_q if same else torch.randn(B, 2, T, 24, generator=gen, dtype=torch.float64)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, :2] = False
    mask[1, 4:] = False
    inputs = (s_q,) if same else (s_q, s_k)

    def f(*xs):
        y = xs[0] if same else xs[1]
        return relation_kl(xs[0], y, t_q, t_k, attention_mask=mask, reduction=reduction, backend="torch")

    assert torch.autograd.gradcheck(f, inputs, fast_mode=True)


BAD = [
    ("s_q", lambda a: dict(a, s_q=a["s_q"][0])),
    ("t_k", lambda a: dict(a, t_k=a["t_k"][:, :, :-1])),
    ("s_k", lambda a: dict(a, s_k=a["s_k"][:1])),
    ("s_k", lambda a: dict(a, s_k=torch.randn(2, 3, 8, 16))),
    ("t_k", lambda a: dict(a, t_k=torch.randn(2, 3, 8, 32))),
    ("t_q", lambda a: dict(a, t_q=torch.randn(2, 3, 8, 32))),
    ("s_q", lambda a: dict(a, s_q=torch.randn(2, 4, 8, 8), s_k=torch.randn(2, 2, 8, 8))),
    ("t_q", lambda a: dict(a, t_q=torch.randn(2, 4, 8, 512), t_k=torch.randn(2, 2, 8, 512))),
    ("s_k", lambda a: dict(a, s_k=a["s_k"].double())),
    ("t_q", lambda a: dict(a, t_q=a["t_q"].half())),
    ("s_q", lambda a: dict(a, s_q=a["s_q"].int(), s_k=a["s_k"].int(), t_q=a["t_q"].int(), t_k=a["t_k"].int())),
    ("attention_mask", lambda a: dict(a, attention_mask=torch.ones(2, 7, dtype=torch.bool))),
    ("attention_mask", lambda a: dict(a, attention_mask=torch.ones(2, 8))),
    ("reduction", lambda a: dict(a, reduction="max")),
    ("backend", lambda a: dict(a, backend="cuda")),
]


@pytest.mark.parametrize("name,make", BAD, ids=[f"{i}-{n}" for i, (n, _) in enumerate(BAD)])
def test_bad_input_names_the_argument(name, make):
    a = dict(s_q=torch.randn(2, 4, 8, 16), s_k=torch.randn(2, 2, 8, 16), t_q=torch.randn(2, 4, 8, 32),
             t_k=torch.randn(2, 1, 8, 32))
    a = make(a)
    with pytest.raises(ValueError, match=name):
        relation_kl(a.pop("s_q"), a.pop("s_k"), a.pop("t_q"), a.pop("t_k"), **a)
