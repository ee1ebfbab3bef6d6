"""The plots stage, on the committed GPU-demo table: the figures are written and show the table's numbers."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from ard import plots
from ard.config import REPO_ROOT
from helpers import ard

GPU_DEMO = REPO_ROOT / "docs" / "results" / "gpu-demo" / "summary.csv"


@pytest.fixture(scope="module")
def summary():
    return pd.read_csv(GPU_DEMO)


def test_writes_every_figure_as_png(summary, tmp_path):
    plots.draw(summary, tmp_path / "plots")
    for name in plots.FIGURES:
        data = (tmp_path / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_short_recovery_bars_are_the_table_values(summary):
    fig, axes = plt.subplots(1, 2)
    plots.short_recovery(summary, axes)
    rows = plots.select(plots.aggregates(summary), "ard_ppl", "bits_per_byte", "short").set_index("variant")
    labels = [tick.get_text() for tick in axes[0].get_yticklabels()]
    widths = [bar.get_width() for bar in axes[0].patches]
    assert "native/none" not in labels and "linear-8x/none" in labels and len(labels) == 6
    assert widths == pytest.approx(rows.loc[labels, "recovery_vs_native_pct"].tolist())
    plt.close(fig)


def test_by_length_has_one_line_per_variant_and_length(summary):
    fig, axes = plt.subplots(1, 3)
    plots.by_length(summary, axes)
    for ax in axes:
        lines = [c.lines[0] for c in ax.containers]  # one errorbar container per variant
        assert len(lines) == summary.variant.nunique()
        assert all(list(line.get_xdata()) == [512, 1024, 2048, 4096] for line in lines)
    plt.close(fig)


def test_by_length_colours_by_restore_and_styles_by_scaling(summary):
    # A second scaling (a copy of linear-8x's rows) must share the restore colours and differ in style.
    yarn = summary[summary.scaling == "linear-8x"].assign(scaling="yarn-8x")
    yarn = yarn.assign(variant=yarn.scaling + "/" + yarn.restore)
    fig, axes = plt.subplots(1, 3)
    plots.by_length(pd.concat([summary, yarn]), axes)
    lines = {c.get_label(): c.lines[0] for c in axes[0].containers}
    assert matplotlib.colors.same_color(lines["native/none"].get_color(), "black")
    assert matplotlib.colors.same_color(lines["linear-8x/none"].get_color(), "grey")
    restores = ["linearard", "cpt", "longred", "logits_kd", "linearard+cpt"]
    colours = [lines[f"linear-8x/{r}"].get_color() for r in restores]
    assert len({matplotlib.colors.to_hex(c) for c in colours}) == len(restores)
    for restore in ["none", *restores]:
        linear, other = lines[f"linear-8x/{restore}"], lines[f"yarn-8x/{restore}"]
        assert matplotlib.colors.same_color(linear.get_color(), other.get_color())
        assert linear.get_linestyle() != other.get_linestyle()
    plt.close(fig)


def test_empty_summary_is_an_error_and_leaves_nothing(tmp_path):
    empty = tmp_path / "summary.csv"
    pd.read_csv(GPU_DEMO).head(0).to_csv(empty, index=False)
    result = ard("plots", "--summary", str(empty), "--out", str(tmp_path / "plots"))
    assert result.returncode != 0
    assert "no rows" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "plots").exists()


def test_error_bars_are_the_summary_intervals(summary):
    summary = summary.assign(ci95_low=summary.value - 0.1, ci95_high=summary.value + 0.2)
    fig, axes = plt.subplots(1, 3)
    plots.by_length(summary, axes)
    rows = plots.select(plots.aggregates(summary), "ard_ppl_window", "bits_per_byte", "ppl")
    native = rows[rows.variant == "native/none"].sort_values("context_length")
    container = axes[0].containers[0]
    segments = container.lines[2][0].get_segments()
    assert [s[0][1] for s in segments] == pytest.approx(native.ci95_low.tolist())
    assert [s[1][1] for s in segments] == pytest.approx(native.ci95_high.tolist())
    plt.close(fig)


def test_a_row_without_an_interval_gets_no_error_bar():
    # An average over tasks has no sampling error, so its recovery has no interval: nothing is drawn,
    # where a zero-width cap would read as a tiny interval.
    summary = pd.read_csv(REPO_ROOT / "docs" / "results" / "smollm2-h200" / "summary.csv")
    fig, axes = plt.subplots(1, 2)
    plots.short_recovery(summary, axes)
    rows = plots.select(plots.aggregates(summary), *plots.SHORT_AVERAGE, "short")
    assert rows.recovery_vs_native_ci95_low.isna().all()

    def bar_segments(ax):
        errorbars = next(c for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer))
        return [len(segment) for segment in errorbars.lines[2][0].get_segments()]

    assert set(bar_segments(axes[1])) == {0} and "no interval" in axes[1].get_xlabel()
    assert 2 in bar_segments(axes[0])  # the headline metric has intervals, and they are drawn
    plt.close(fig)


def test_training_curves_one_line_per_seed(tmp_path):
    for seed in (0, 1):
        log = tmp_path / "variants" / "linear-4x" / "linearard" / f"seed{seed}" / "train_log.csv"
        log.parent.mkdir(parents=True)
        pd.DataFrame({"step": [1, 2, 3], "loss": [3.0, 2.0 + seed, 1.5]}).to_csv(log, index=False)
    logs = plots.train_logs(tmp_path / "variants")
    assert list(logs) == ["linear-4x/linearard"] and sorted(logs["linear-4x/linearard"]) == ["0", "1"]
    fig, axes = plt.subplots(1, 1, squeeze=False)
    plots.training_curves(logs, axes[0])
    assert [list(line.get_ydata()) for line in axes[0][0].get_lines()] == [[3.0, 2.0, 1.5], [3.0, 3.0, 1.5]]
    plt.close(fig)


def test_recovery_vs_tokens_tells_scalings_apart_by_marker_and_restores_by_colour():
    # The SmolLM2 table holds restores on two scalings (linear-4x and yarn-4x) and the 10x variants.
    summary = pd.read_csv(REPO_ROOT / "docs" / "results" / "smollm2-h200" / "summary.csv")
    fig, axes = plt.subplots(1, 1, squeeze=False)
    plots.recovery_vs_tokens(summary, axes[0])
    points = {c.get_label(): c.lines[0] for c in axes[0][0].containers}
    rows = plots.select(plots.aggregates(summary), "ard_ppl", "bits_per_byte", "short").set_index("variant")
    restored = rows[rows.restore != "none"]
    assert sorted(points) == sorted(restored.index)
    for variant, line in points.items():
        assert list(line.get_xdata()) == [restored.train_tokens[variant]]
        assert list(line.get_ydata()) == pytest.approx([restored.recovery_vs_native_pct[variant]])
    assert points["linear-4x/cpt"].get_color() == points["yarn-4x/cpt"].get_color() != points["linear-4x/linearard"].get_color()
    assert points["linear-4x/cpt"].get_marker() != points["yarn-4x/cpt"].get_marker()
    assert points["linear-4x/cpt"].get_marker() == points["linear-4x/linearard"].get_marker()
    legend = [text.get_text() for text in axes[0][0].get_legend().get_texts()]
    assert legend == sorted(restored.restore.unique()) + ["linear-4x", "yarn-4x"]
    dotted = [line.get_ydata()[0] for line in axes[0][0].get_lines() if line.get_linestyle() == ":"]
    named = {text.get_text(): text.get_position()[1] for text in axes[0][0].texts}
    expected = rows.query("restore == 'none' and scaling != 'native'").recovery_vs_native_pct.to_dict()
    assert named == pytest.approx(expected) and sorted(dotted) == pytest.approx(sorted(expected.values()))
    plt.close(fig)
