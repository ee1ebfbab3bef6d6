"""The summary's statistics: intervals over seeds, paired tests over evaluation samples, Holm's correction,
gaps too small to divide by, and rebuilding committed tables."""
import math
from html import escape

import numpy as np
import pandas as pd
import pytest

from ard import config as ard_config
from ard import claims, report, stats
from ard.io import write_json
from ard.paths import Layout
from helpers import REPO

N_DOCS = 20


def _config(tmp_path, restores, seeds):
    return ard_config.validate({
        "experiment": "stats", "outdir": str(tmp_path), "scalings": [{"type": "linear", "factor": 4}],
        "restores": list(restores), "seeds": list(seeds), "evaluation": {"suites": ["short"]},
    })


def _write(layout, scaling, restore, correct, seed=None, bits=None):
    """An evaluation with per-sample scores: `correct` (0/1 per document) for acc, `bits` for bits per byte."""
    bits = bits if bits is not None else [1.0] * N_DOCS
    items = {
        "acc": [float(c) for c in correct],
        "bits_per_byte": [[-b * 100 * math.log(2), 100] for b in bits],  # (loglikelihood, bytes)
    }
    samples = [{"doc_id": i, "filter": "none", "acc": items["acc"][i], "bits_per_byte": items["bits_per_byte"][i]}
               for i in range(N_DOCS)]
    acc = float(np.mean(correct))
    rows = [
        {"suite": "short", "task": "cloze", "metric": "acc", "context_length": None, "value": acc,
         "stderr": float(np.std(correct, ddof=1) / math.sqrt(N_DOCS)), "n_samples": N_DOCS,
         "higher_is_better": True, "beyond_max_position": False},
        {"suite": "short", "task": "cloze", "metric": "bits_per_byte", "context_length": None,
         "value": float(np.mean(bits)), "stderr": 0.05, "n_samples": N_DOCS, "higher_is_better": False,
         "beyond_max_position": False},
        {"suite": "short", "task": "short_avg", "metric": "score", "context_length": None, "value": acc,
         "stderr": None, "n_samples": N_DOCS, "higher_is_better": True, "beyond_max_position": False},
    ]
    configs = {"cloze": {"metric_list": [{"metric": "acc", "aggregation": "mean"}, {"metric": "bits_per_byte"}]}}
    write_json(layout.eval_result(scaling, restore, "short", seed),
               {"rows": rows, "results": {"short": {"configs": configs}}, "samples": {"short": {"cloze": samples}}})
    if restore != "none":
        write_json(layout.variant(scaling, restore, seed) / "restore.json", {"train_tokens": 100})


def _summary(tmp_path, restores, seeds, writes):
    config = _config(tmp_path, restores, seeds)
    layout = Layout(tmp_path)
    for args in writes:
        _write(layout, *args)
    report.build(config, layout.summary_csv, layout.summary_md)
    return pd.read_csv(layout.summary_csv), layout


def _rows(frame, variant, metric, row_type=report.AGGREGATE):
    return frame[(frame.variant == variant) & (frame.metric == metric) & (frame.row_type == row_type)]


rng = np.random.default_rng(0)
NATIVE = (rng.random(N_DOCS) < 0.8).astype(int)
NONE = np.zeros(N_DOCS, dtype=int)


def test_three_seeds_give_an_interval_holding_every_seed(tmp_path):
    seeds = [(NATIVE * (rng.random(N_DOCS) < 0.9)).astype(int) for _ in range(3)]
    frame, _ = _summary(tmp_path, ["none", "linearard"], [0, 1, 2], [
        ("native", "none", NATIVE), ("linear-4x", "none", NONE),
        *[("linear-4x", "linearard", correct, seed) for seed, correct in enumerate(seeds)],
    ])
    per_seed = _rows(frame, "linear-4x/linearard", "acc", report.PER_SEED)
    assert sorted(per_seed.seed) == [0, 1, 2]
    (aggregate,) = _rows(frame, "linear-4x/linearard", "acc").itertuples()
    values = [c.mean() for c in seeds]
    assert aggregate.n_seeds == 3 and aggregate.ci_method == "t_over_seeds"
    assert aggregate.mean == pytest.approx(np.mean(values)) and aggregate.sd == pytest.approx(np.std(values, ddof=1))
    assert all(aggregate.ci95_low <= v <= aggregate.ci95_high for v in values)
    (native,) = _rows(frame, "native/none", "acc").itertuples()
    assert native.n_seeds == 1 and native.ci_method == "normal_stderr" and pd.isna(native.seed)
    assert native.ci95_low == pytest.approx(native.value - 1.959964 * native.stderr)


def test_planted_difference_is_significant_and_a_copy_is_not(tmp_path):
    # linearard: right wherever the native teacher is; none: always wrong; logits_kd: linearard's very
    # samples under another label (a variant compared with itself)
    frame, layout = _summary(tmp_path, ["none", "linearard", "logits_kd"], [0, 1], [
        ("native", "none", NATIVE), ("linear-4x", "none", NONE),
        ("linear-4x", "linearard", NATIVE, 0), ("linear-4x", "linearard", NATIVE, 1),
        ("linear-4x", "logits_kd", NATIVE, 0), ("linear-4x", "logits_kd", NATIVE, 1),
    ])
    (linearard,) = _rows(frame, "linear-4x/linearard", "acc").itertuples()
    assert linearard.better_than_none_p < 0.05 and linearard.better_than_none_significant
    assert linearard.better_than_best_baseline_p >= 0.05 and not linearard.better_than_best_baseline_significant
    (logits_kd,) = _rows(frame, "linear-4x/logits_kd", "acc").itertuples()
    assert logits_kd.better_than_none_p < 0.05
    assert pd.isna(logits_kd.better_than_best_baseline_p)  # it is the best baseline itself
    assert _rows(frame, "linear-4x/none", "acc").better_than_none_p.isna().all()
    table = layout.summary_md.read_text().split("## short")[1]
    assert "*" in table and "†" not in table


def test_linearard_worse_than_the_best_baseline_is_marked_and_judged(tmp_path):
    # cpt: right wherever the native teacher is; linearard: right on a few of those documents only
    weak = NATIVE * (np.arange(N_DOCS) < 4)
    frame, layout = _summary(tmp_path, ["none", "linearard", "cpt"], [0, 1], [
        ("native", "none", NATIVE), ("linear-4x", "none", NONE),
        ("linear-4x", "linearard", weak, 0), ("linear-4x", "linearard", weak, 1),
        ("linear-4x", "cpt", NATIVE, 0), ("linear-4x", "cpt", NATIVE, 1),
    ])
    (linearard,) = _rows(frame, "linear-4x/linearard", "acc").itertuples()
    assert linearard.best_baseline == "cpt"
    assert linearard.worse_than_best_baseline_p < 0.05 and linearard.worse_than_best_baseline_significant
    assert linearard.better_than_best_baseline_p > 0.5 and not linearard.better_than_best_baseline_significant
    (cpt,) = _rows(frame, "linear-4x/cpt", "acc").itertuples()
    assert pd.isna(cpt.worse_than_best_baseline_p)  # only LinearARD restores are tested that way
    markdown = layout.summary_md.read_text()
    assert "‡" in markdown.split("## short")[1].split("## The paper")[0]
    claim = [line for line in markdown.splitlines() if line.startswith("- linear-4x/linearard, short suite")]
    expected = 100 * weak.mean() / NATIVE.mean()
    assert len(claim) == 1 and f"is {expected:.1f} % of linear-4x/cpt's" in claim[0]
    assert "the best baseline better on 1 of 2 (cloze acc)" in claim[0]  # bits/byte: identical, a tie
    assert claim[0].endswith("Claim 1: does not hold; the best baseline used no more tokens,"
                             " so \"far fewer tokens\" is not tested here.")
    html = report.to_html(frame)
    assert f"<h2>{escape(claims.HEADING)}</h2>" in html and html.count("<li>linear-4x/linearard") == 1


def test_ratio_metrics_are_tested_on_their_aggregate(tmp_path):
    native_bits = list(rng.uniform(0.8, 1.2, N_DOCS))
    frame, _ = _summary(tmp_path, ["none", "linearard"], [0], [
        ("native", "none", NATIVE, None, native_bits), ("linear-4x", "none", NONE, None, [b + 0.5 for b in native_bits]),
        ("linear-4x", "linearard", NATIVE, 0, [b + 0.1 for b in native_bits]),
    ])
    (row,) = _rows(frame, "linear-4x/linearard", "bits_per_byte").itertuples()
    assert row.better_than_none_p < 0.05  # lower bits per byte on every document


def test_gap_inside_its_interval_is_left_empty_with_the_reason(tmp_path):
    nearly = NATIVE.copy()
    nearly[0] = 1 - nearly[0]  # one document apart: native − none is far inside its interval
    frame, _ = _summary(tmp_path, ["none", "linearard"], [0], [
        ("native", "none", NATIVE), ("linear-4x", "none", nearly), ("linear-4x", "linearard", NONE, 0),
    ])
    (row,) = _rows(frame, "linear-4x/linearard", "acc").itertuples()
    assert pd.isna(row.gap_closed_pct) and "inside its 95 % interval" in row.gap_closed_note
    assert row.recovery_vs_native_pct == pytest.approx(0.0)


def test_intervals_of_ratios_are_propagated():
    ratio, se = stats.ratio_pct(0.5, 0.8, True, 0.05, 0.04)
    assert ratio == pytest.approx(62.5) and se == pytest.approx(62.5 * math.hypot(0.1, 0.05))
    assert stats.ratio_pct(0.0, 0.8, True, 0.05, 0.04) == pytest.approx((0.0, 100 * 0.05 / 0.8))
    closed, se, note = stats.gap_closed_pct(0.7, 0.4, 0.8, 0.01, 0.01, 0.01)
    assert closed == pytest.approx(75.0) and note == ""
    # finite differences of the definition agree with the propagated standard error
    eps = 1e-6
    grads = [(stats.gap_closed_pct(*(np.array([0.7, 0.4, 0.8]) + eps * np.eye(3)[i]), 0, 0, 0)[0] - closed) / eps for i in range(3)]
    assert se == pytest.approx(math.sqrt(sum((g * 0.01) ** 2 for g in grads)), rel=1e-4)


def test_holm_adjusts_in_order_and_keeps_missing_values():
    adjusted = stats.holm([0.01, math.nan, 0.04, 0.03])
    assert adjusted[0] == pytest.approx(0.03) and math.isnan(adjusted[1])
    assert adjusted[3] == pytest.approx(0.06) and adjusted[2] == pytest.approx(0.06)  # monotone: max(0.04, 0.06)


def test_paired_pvalue_of_identical_samples_is_one_and_of_a_clear_win_small():
    items = list(rng.random(30))
    assert stats.paired_pvalue(items, items, "mean", True) == 1.0
    assert stats.paired_pvalue([x + 1 for x in items], items, "mean", True) < 0.001
    assert stats.paired_pvalue([x + 1 for x in items], items, "mean", False) > 0.99  # worse, when lower is better


def test_a_clear_win_draws_every_permutation_allowed_and_reaches_the_floor():
    items = list(rng.random(30))
    # no flip of 30 positive differences beats the observed one (but the identity, 1 in 2^30)
    assert stats.paired_pvalue([x + 1 for x in items], items, "mean", True, max_permutations=50_000) == 1 / 50_001
    assert stats.permutations_for(2000, 0.05) == 160_000  # floor 1/160001: Holm over 2000 leaves 0.0125
    assert stats.permutations_for(3, 0.05) == stats.PERMUTATIONS


def test_sequential_pvalues_are_valid_under_the_null():
    # both sides drawn from one distribution: P(p <= 0.1) must not exceed 0.1 (beyond binomial noise)
    draws = np.random.default_rng(1)
    pvalues = [stats.paired_pvalue(list(draws.random(25)), list(draws.random(25)), "mean", True,
                                   max_permutations=40_000, seed=i) for i in range(300)]
    assert np.mean(np.array(pvalues) <= 0.1) <= 0.1 + 3 * math.sqrt(0.1 * 0.9 / 300)
    assert 0.3 < np.median(pvalues) < 0.7


def test_a_planted_win_stays_significant_among_hundreds_of_tests(tmp_path):
    # 80 tasks x 3 comparisons: with a fixed 4000 flips the smallest p (1/4001) could not pass Holm's
    # 0.05 / 240; drawn until it can, the planted win passes and a copy of none does not
    tasks = [f"t{i}" for i in range(80)]
    layout = Layout(tmp_path)
    config = _config(tmp_path, ["none", "linearard", "cpt"], [0])
    for scaling, restore, seed, correct in (("native", "none", None, NATIVE), ("linear-4x", "none", None, NONE),
                                            ("linear-4x", "linearard", 0, NATIVE), ("linear-4x", "cpt", 0, NONE)):
        rows = [{"suite": "short", "task": t, "metric": "acc", "context_length": None, "value": float(np.mean(correct)),
                 "stderr": 0.05, "n_samples": N_DOCS, "higher_is_better": True, "beyond_max_position": False}
                for t in tasks]
        samples = {t: [{"doc_id": i, "filter": "none", "acc": float(correct[i])} for i in range(N_DOCS)] for t in tasks}
        configs = {t: {"metric_list": [{"metric": "acc", "aggregation": "mean"}]} for t in tasks}
        write_json(layout.eval_result(scaling, restore, "short", seed),
                   {"rows": rows, "results": {"short": {"configs": configs}}, "samples": {"short": samples}})
        if restore != "none":
            write_json(layout.variant(scaling, restore, seed) / "restore.json", {"train_tokens": 100})
    report.build(config, layout.summary_csv, layout.summary_md)
    frame = pd.read_csv(layout.summary_csv)
    linearard = _rows(frame, "linear-4x/linearard", "acc")
    cpt = _rows(frame, "linear-4x/cpt", "acc")
    assert len(linearard) == 80 and linearard.better_than_none_significant.all()
    assert linearard.better_than_best_baseline_significant.all()  # cpt is the best (only) baseline
    assert not cpt.better_than_none_significant.any()


@pytest.mark.parametrize("table", ["matrix", "gpu-demo"])
def test_committed_tables_rebuild_without_runaway_gaps(tmp_path, table):
    source = REPO / "docs" / "results" / table / "summary.csv"
    assert report.main(["--from-summary", str(source), "--out-csv", str(tmp_path / "s.csv"),
                        "--out-md", str(tmp_path / "s.md")]) == 0
    rebuilt, old = pd.read_csv(tmp_path / "s.csv"), pd.read_csv(source)
    aggregate = rebuilt[rebuilt.row_type == report.AGGREGATE]
    assert set(aggregate.variant) == set(old.variant)
    gaps = aggregate.gap_closed_pct
    assert ((gaps.abs() <= 200) | gaps.isna()).all()
    scaled = aggregate[aggregate.scaling != "native"]
    assert (scaled.gap_closed_note.notna() == scaled.gap_closed_pct.isna()).all()  # every empty one says why
