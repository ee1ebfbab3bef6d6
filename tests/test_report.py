"""Recovery arithmetic of the report stage, on hand-made evaluation results."""
import math

import pandas as pd
import pytest
import yaml

from ard import config as ard_config
from ard import report, restore_methods
from ard.io import write_json
from ard.paths import Layout


def _config(tmp_path, restores=("none", "linearard", "cpt")):
    return ard_config.validate({
        "experiment": "unit",
        "outdir": str(tmp_path),
        "scalings": [{"type": "linear", "factor": 4}],
        "restores": list(restores),
        "evaluation": {"suites": ["short"]},
    })


def _write(layout, scaling, restore, acc, ppl, niah, tokens=None, seed=0, ppl_stderr=0.5):
    rows = [
        {"suite": "short", "task": "cloze", "metric": "acc", "context_length": None, "value": acc, "stderr": 0.01,
         "n_samples": 50, "higher_is_better": True, "beyond_max_position": False},
        {"suite": "short", "task": "ppl", "metric": "word_perplexity", "context_length": None, "value": ppl,
         "stderr": ppl_stderr, "n_samples": 10, "higher_is_better": False, "beyond_max_position": False},
        {"suite": "short", "task": "niah", "metric": "score", "context_length": 512, "value": niah, "stderr": 0.1,
         "n_samples": 20, "higher_is_better": True, "beyond_max_position": scaling == "native"},
    ]
    seed = None if restore == "none" else seed
    write_json(layout.eval_result(scaling, restore, "short", seed), {"rows": rows})
    if tokens is not None:
        write_json(layout.variant(scaling, restore, seed) / "restore.json", {"train_tokens": tokens})


@pytest.fixture
def summary(tmp_path):
    config = _config(tmp_path)
    layout = Layout(tmp_path)
    _write(layout, "native", "none", acc=0.60, ppl=20.0, niah=0.10)
    _write(layout, "linear-4x", "none", acc=0.40, ppl=40.0, niah=0.50)
    _write(layout, "linear-4x", "linearard", acc=0.55, ppl=25.0, niah=0.45, tokens=1000)
    _write(layout, "linear-4x", "cpt", acc=0.50, ppl=30.0, niah=0.60, tokens=5000)
    report.build(config, layout.summary_csv, layout.summary_md)
    return pd.read_csv(layout.summary_csv), layout


def _row(frame, variant, task, row_type=report.AGGREGATE):
    match = frame[(frame.variant == variant) & (frame.task == task) & (frame.row_type == row_type)]
    assert len(match) == 1
    return match.iloc[0]


def test_columns_and_row_count(summary):
    frame, _ = summary
    assert list(frame.columns) == report.COLUMNS
    # an aggregate row per variant and metric, and a per-seed row for each restored variant
    assert len(frame) == 4 * 3 + 2 * 3
    assert (frame[frame.row_type == report.PER_SEED].restore != "none").all()
    assert set(frame.variant) == {"native/none", "linear-4x/none", "linear-4x/linearard", "linear-4x/cpt"}


def test_higher_is_better_recovery(summary):
    frame, _ = summary
    row = _row(frame, "linear-4x/linearard", "cloze")
    assert row.native_value == pytest.approx(0.60)
    assert row.recovery_vs_native_pct == pytest.approx(100 * 0.55 / 0.60)
    assert row.recovery_vs_best_baseline_pct == pytest.approx(100 * 0.55 / 0.50)  # cpt beats none
    assert row.gap_closed_pct == pytest.approx(100 * (0.55 - 0.40) / (0.60 - 0.40))
    assert row.train_tokens == 1000


def test_lower_is_better_recovery_is_inverted(summary):
    frame, _ = summary
    row = _row(frame, "linear-4x/linearard", "ppl")
    assert row.recovery_vs_native_pct == pytest.approx(100 * 20.0 / 25.0)
    assert row.recovery_vs_best_baseline_pct == pytest.approx(100 * 30.0 / 25.0)  # best baseline = lowest ppl
    assert row.gap_closed_pct == pytest.approx(100 * (25.0 - 40.0) / (20.0 - 40.0))


def test_native_rows_are_their_own_reference(summary):
    frame, _ = summary
    row = _row(frame, "native/none", "cloze")
    assert row.recovery_vs_native_pct == pytest.approx(100.0)
    assert math.isnan(row.recovery_vs_best_baseline_pct) and math.isnan(row.gap_closed_pct)
    assert row.train_tokens == 0


def test_long_context_rows_keep_their_length_and_flag(summary):
    frame, _ = summary
    row = _row(frame, "native/none", "niah")
    assert row.context_length == 512 and bool(row.beyond_max_position)
    assert _row(frame, "linear-4x/cpt", "niah").recovery_vs_native_pct == pytest.approx(600.0)


def test_markdown_pivot_lists_every_variant(summary):
    _, layout = summary
    text = layout.summary_md.read_text()
    for variant in ("native/none", "linear-4x/none", "linear-4x/linearard", "linear-4x/cpt"):
        assert variant in text
    assert "linear-4x/linearard rec%" in text
    assert "Partial" not in text  # every run has its results


def test_missing_result_is_an_error(tmp_path):
    config = _config(tmp_path, restores=("none",))
    layout = Layout(tmp_path)
    _write(layout, "native", "none", acc=0.6, ppl=20.0, niah=0.1)
    with pytest.raises(FileNotFoundError, match="linear-4x/none/short.json"):
        report.build(config, layout.summary_csv, layout.summary_md)
    assert not layout.summary_csv.exists()


def test_a_named_variant_of_linearard_is_no_baseline_whatever_its_name(tmp_path):
    config = ard_config.validate({
        "experiment": "unit", "outdir": str(tmp_path), "scalings": [{"type": "linear", "factor": 4}],
        "restores": ["none", "linearard", "cpt", "long-run"], "restore": {"long-run": {"method": "linearard"}},
        "evaluation": {"suites": ["short"]},
    })
    assert [restore_methods.is_linearard(m) for m in ("none", "cpt", "linearard", "linearard+cpt")] == [False, False, True, True]
    layout = Layout(tmp_path)
    _write(layout, "native", "none", acc=0.60, ppl=20.0, niah=0.10)
    _write(layout, "linear-4x", "none", acc=0.40, ppl=40.0, niah=0.50)
    _write(layout, "linear-4x", "linearard", acc=0.55, ppl=25.0, niah=0.45, tokens=1000)
    _write(layout, "linear-4x", "cpt", acc=0.50, ppl=30.0, niah=0.60, tokens=5000)
    _write(layout, "linear-4x", "long-run", acc=0.58, ppl=22.0, niah=0.70, tokens=9000)
    report.build(config, layout.summary_csv, layout.summary_md)
    frame = pd.read_csv(layout.summary_csv)
    # cpt stays the best baseline though long-run scores higher: long-run is LinearARD too
    assert _row(frame, "linear-4x/linearard", "cloze").recovery_vs_best_baseline_pct == pytest.approx(100 * 0.55 / 0.50)
    assert _row(frame, "linear-4x/long-run", "cloze").recovery_vs_best_baseline_pct == pytest.approx(100 * 0.58 / 0.50)
    assert set(frame[frame.restore == "long-run"].method) == {"linearard"}
    # rebuilt from the table alone, the method column still tells long-run is no baseline
    rebuilt = tmp_path / "rebuilt.csv"
    assert report.main(["--from-summary", str(layout.summary_csv), "--out-csv", str(rebuilt),
                        "--out-md", str(tmp_path / "rebuilt.md")]) == 0
    rebuilt = pd.read_csv(rebuilt)
    assert _row(rebuilt, "linear-4x/long-run", "cloze").recovery_vs_best_baseline_pct == pytest.approx(100 * 0.58 / 0.50)


def test_partial_summary_leaves_out_runs_without_results(tmp_path, capsys):
    config = _config(tmp_path)
    layout = Layout(tmp_path)
    _write(layout, "native", "none", acc=0.6, ppl=20.0, niah=0.1)
    _write(layout, "linear-4x", "none", acc=0.4, ppl=40.0, niah=0.5)
    args = ["--config", str(layout.resolved_config), "--out-csv", str(layout.summary_csv), "--out-md", str(layout.summary_md)]
    layout.resolved_config.parent.mkdir(parents=True, exist_ok=True)
    layout.resolved_config.write_text(yaml.safe_dump(config))
    assert report.main(args) == 1 and not layout.summary_csv.exists()  # a whole summary needs every run
    assert report.main([*args, "--partial"]) == 0
    assert "partial summary: " in capsys.readouterr().out
    frame = pd.read_csv(layout.summary_csv)
    assert set(frame.variant) == {"native/none", "linear-4x/none"}
    summary_md = layout.summary_md.read_text()
    assert "· 2 evaluated runs" in summary_md
    assert "Partial: 2 runs not evaluated yet, left out: linear-4x/linearard (seed 0); linear-4x/cpt (seed 0)." in summary_md
