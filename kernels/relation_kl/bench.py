"""Benchmark: relation_kl forward+backward vs materialised PyTorch vs SDPA-flash forward+backward.

    python -m relation_kl.bench --out docs/results/kernel-bench.csv [--check]

Shapes: B=1, H=32, D=128, bf16, causal, T = 1K…32K (a Q/Q self-relation); a GQA case (32 query heads on
8 key heads) and a D=64 case at 8K. Useful TFLOP/s counts 6·B·H·T²·D for every method (the relation KL's
work, whose causal matmuls sum to that). Peak extra memory is the allocator's peak during one
forward+backward minus what was allocated before it (the inputs). --check first compares against the float64
reference on the GPU. On a machine without CUDA it runs the same code on CPU (for a smoke test only).
"""
import argparse
import csv
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from . import relation_kl, relation_kl_reference

GIB = 2 ** 30
MATERIALISED_MAX_T = 8192  # 16K would need about 4 × 58 GiB


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _time_ms(fn, dev, budget_ms=1500.0):
    """Median of repeated runs after warm-up (which also autotunes), timed with CUDA events."""
    for _ in range(2):
        fn()
    _sync(dev)
    t0 = time.perf_counter()
    fn()
    _sync(dev)
    est = (time.perf_counter() - t0) * 1e3
    n = int(min(50, max(5, budget_ms / max(est, 1e-3))))
    times = []
    for _ in range(n):
        if dev.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _peak_extra_gib(fn, dev, leaves):
    """Counts the gradients too: the timed runs left them allocated, so drop them before the baseline."""
    if dev.type != "cuda":
        return float("nan")
    for x in leaves:
        x.grad = None
    _sync(dev)
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    _sync(dev)
    return (torch.cuda.max_memory_allocated() - base) / GIB


def _randn(shape, dtype, dev, gen):
    return torch.randn(shape, generator=gen, device=dev, dtype=torch.float32).to(dtype)


def _relation_fn(method, B, Hq, Hk, T, D, dtype, dev, gen):
    """fwd+bwd closure for a Q/Q self-relation (Hk == Hq) or a Q·K relation on Hk key heads."""
    s_q = _randn((B, Hq, T, D), dtype, dev, gen).requires_grad_()
    t_q = _randn((B, Hq, T, D), dtype, dev, gen)
    if Hk == Hq:
        s_k, t_k = s_q, t_q
    else:
        s_k = _randn((B, Hk, T, D), dtype, dev, gen).requires_grad_()
        t_k = _randn((B, Hk, T, D), dtype, dev, gen)
    leaves = list({id(s_q): s_q, id(s_k): s_k}.values())
    op = relation_kl if method == "ours" else relation_kl_reference

    def fn():
        for x in leaves:
            x.grad = None
        op(s_q, s_k, t_q, t_k).backward()

    def fwd():
        with torch.no_grad():
            op(s_q, s_k, t_q, t_k)

    inputs = sum(x.numel() * x.element_size() for x in {id(x): x for x in (s_q, s_k, t_q, t_k)}.values())
    return fn, fwd, inputs, leaves


def _sdpa_fn(B, Hq, Hk, T, D, dtype, dev, gen):
    q = _randn((B, Hq, T, D), dtype, dev, gen).requires_grad_()
    k = _randn((B, Hk, T, D), dtype, dev, gen).requires_grad_()
    v = _randn((B, Hk, T, D), dtype, dev, gen).requires_grad_()
    do = _randn((B, Hq, T, D), dtype, dev, gen)

    def fn():
        for x in (q, k, v):
            x.grad = None
        if dev.type == "cuda":
            from torch.nn.attention import SDPBackend, sdpa_kernel
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=Hq != Hk)
        else:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=Hq != Hk)
        out.backward(do)

    return fn, None, sum(x.numel() * x.element_size() for x in (q, k, v, do)), (q, k, v)


def _rel(x, ref):
    return ((x.double() - ref.double()).norm() / ref.double().norm()).item()


def check(dev, log):
    """Our GPU results against the float64 reference (materialised, so moderate T), and reproducibility."""
    gen = torch.Generator(device=dev).manual_seed(0)
    ok = True
    cases = [  # name, B, Hq, Hk, Hkt, T, Ds, Dt, dtype, mask, reduction, same
        ("self-1K-bf16", 1, 4, 4, 4, 1024, 128, 128, torch.bfloat16, False, "sum", True),
        ("self-4K-bf16", 1, 4, 4, 4, 4096, 128, 128, torch.bfloat16, False, "sum", True),
        ("self-4K-fp32", 1, 4, 4, 4, 4096, 128, 128, torch.float32, False, "sum", True),
        ("qk-1K-fp32-d64", 1, 4, 4, 4, 1024, 64, 64, torch.float32, False, "mean", False),
        ("gqa4-mask-odd-bf16", 2, 8, 2, 4, 1000, 64, 128, torch.bfloat16, True, "none", False),
        ("gqa2-d80-2K-fp16", 1, 4, 2, 1, 2048, 80, 48, torch.float16, True, "sum", False),
    ]
    for name, B, Hq, Hk, Hkt, T, Ds, Dt, dtype, use_mask, reduction, same in cases:
        T = T if dev.type == "cuda" else T // 16  # the CPU smoke test only exercises the code
        s_q = _randn((B, Hq, T, Ds), dtype, dev, gen)
        t_q = _randn((B, Hq, T, Dt), dtype, dev, gen)
        s_k = s_q if same else _randn((B, Hk, T, Ds), dtype, dev, gen)
        t_k = t_q if same else _randn((B, Hkt, T, Dt), dtype, dev, gen)
        mask = None
        if use_mask:
            mask = torch.rand(B, T, device=dev, generator=gen) > 0.2
            mask[0, :T // 10] = False
        g = torch.randn(B, Hq, T, device=dev, generator=gen) if reduction == "none" else None

        def run(op, q, k):
            x = q.clone().requires_grad_()
            y = x if same else k.clone().requires_grad_()
            out = op(x, y, t_q.to(q.dtype), t_k.to(q.dtype), attention_mask=mask, reduction=reduction)
            grads = torch.autograd.grad(out, (x,) if same else (x, y), g)
            return (out,) + grads

        got = run(relation_kl, s_q, s_k)
        again = run(relation_kl, s_q, s_k)
        ref = run(relation_kl_reference, s_q.double(), s_k.double())
        errs = [_rel(a, b) for a, b in zip(got, ref)]
        finite = all(torch.isfinite(x).all().item() for x in got)
        same_bits = all(torch.equal(a, b) for a, b in zip(got, again))
        tol_loss, tol_grad = (1e-5, 1e-4) if dtype == torch.float32 else (1e-4, 5e-3)
        good = finite and same_bits and errs[0] <= tol_loss and max(errs[1:]) <= tol_grad
        ok &= good
        log(f"check {name:22s} loss_rel={errs[0]:.2e} grad_rel={max(errs[1:]):.2e} finite={finite} "
            f"bitwise_repeat={same_bits} {'OK' if good else 'FAIL'}")
        del got, again, ref
        torch.cuda.empty_cache() if dev.type == "cuda" else None
    return ok


def bench(dev, ts, log, emit):
    rows = []
    dtype = torch.bfloat16
    gen = torch.Generator(device=dev).manual_seed(1)
    cases = [("self", 1, 32, 32, T, 128) for T in ts]
    if dev.type == "cuda":
        cases += [("gqa8", 1, 32, 8, 8192, 128), ("d64", 1, 32, 32, 8192, 64)]
    for case, B, Hq, Hk, T, D in cases:
        flops = 6 * B * Hq * T * T * D
        methods = ["ours", "ours_fwd_only", "sdpa_flash"]
        if T <= MATERIALISED_MAX_T and case == "self":
            methods.append("materialised")
        for method in methods:
            row = dict(case=case, method=method, B=B, Hq=Hq, Hk=Hk, T=T, D=D, dtype="bf16", causal=True)
            try:
                if method == "sdpa_flash":
                    fn, _, inputs, leaves = _sdpa_fn(B, Hq, Hk, T, D, dtype, dev, gen)
                else:
                    fn, fwd, inputs, leaves = _relation_fn("ours" if method.startswith("ours") else method,
                                                   B, Hq, Hk, T, D, dtype, dev, gen)
                    if method == "ours_fwd_only":
                        fn = fwd
                ms = _time_ms(fn, dev)
                row.update(ms=round(ms, 4), useful_tflops=round(flops / ms / 1e9, 1),
                           peak_extra_gib=round(_peak_extra_gib(fn, dev, leaves), 3), inputs_gib=round(inputs / GIB, 3),
                           status="ok")
            except torch.OutOfMemoryError:
                row.update(status="OOM")
            except Exception as e:  # noqa: BLE001 — one failing method must not lose the rest of the table
                row.update(status=f"error: {type(e).__name__}: {str(e)[:200]}")
            fn = fwd = leaves = None
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            rows.append(row)
            emit(row)
            log(f"{case:5s} T={T:6d} D={D:3d} {method:14s} " +
                (f"{row['ms']:9.3f} ms {row['useful_tflops']:7.1f} TFLOP/s extra {row['peak_extra_gib']:.3f} GiB"
                 if row["status"] == "ok" else row["status"]))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="docs/results/kernel-bench.csv")
    p.add_argument("--ts", default="1024,4096,8192,16384,32768", help="sequence lengths, comma-separated")
    p.add_argument("--check", action="store_true", help="compare with the float64 reference first")
    args = p.parse_args(argv)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def log(msg):
        print(msg, flush=True)

    import triton
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    log(f"device {name}; torch {torch.__version__}; triton {triton.__version__}; python {sys.version.split()[0]}")
    ok = check(dev, log) if args.check else True
    fields = ["case", "method", "B", "Hq", "Hk", "T", "D", "dtype", "causal", "ms", "useful_tflops",
              "peak_extra_gib", "inputs_gib", "status"]
    with open(args.out, "w", newline="") as f:  # row by row, so a run cut short keeps what it measured
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()

        def emit(row):
            w.writerow(row)
            f.flush()

        rows = bench(dev, [int(t) for t in args.ts.split(",")], log, emit)
    if dev.type == "cuda":
        from . import triton_relation_kl as t
        for label, tuners in zip(("rows", "cols"), t.TUNED):
            for tuner in tuners:
                for key, cfg in tuner.cache.items():
                    log(f"autotune {label} {key} -> {cfg}")
    sdpa = {(r["case"], r["T"]): r.get("ms") for r in rows if r["method"] == "sdpa_flash"}
    log("\n| case | T | D | ours ms | SDPA-flash ms | ours/SDPA | ours TFLOP/s | ours extra GiB | SDPA extra GiB |")
    log("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["method"] == "ours" and r["status"] == "ok":
            s = sdpa.get((r["case"], r["T"]))
            se = next((x.get("peak_extra_gib") for x in rows
                       if x["method"] == "sdpa_flash" and (x["case"], x["T"]) == (r["case"], r["T"])), None)
            log(f"| {r['case']} | {r['T']} | {r['D']} | {r['ms']:.3f} | {s if s else '-'} | "
                f"{r['ms'] / s if s else float('nan'):.2f} | {r['useful_tflops']} | {r['peak_extra_gib']} | {se} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
