"""Stage `plots`: figures drawn from a summary.csv (the report stage's output), one PNG each.

  short_recovery.png     short-text recovery vs native (bits/byte and the short-suite average), per variant
  recovery_vs_tokens.png bits/byte recovery against the restore's training tokens (the token-cost view)
  by_length.png          perplexity by length and the needle / RULER / LongBench averages, per context
                         length (a panel for each of these the summary holds)
  training_curves.png    with --variants: each restored variant's loss per step, one line per seed
Error bars are the summary's 95 % intervals (aggregate rows: over seeds, or from the standard error).
Reads only the CSV (and the train logs), so it also redraws a committed table (docs/results/*/summary.csv).
"""
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ard.io import atomic_dir
from ard.runtime import stage_main, stage_parser

HEADLINE = ("ard_ppl", "bits_per_byte")
SHORT_AVERAGE = ("short_avg", "score")
BY_LENGTH = [  # (suite, task, metric, axis label)
    ("ppl", "ard_ppl_window", "bits_per_byte", "bits/byte (lower is better)"),
    ("niah", "niah_avg", "score", "needle-in-a-haystack average"),
    ("ruler", "ruler_avg", "score", "RULER-style average"),
    ("longbench", "longbench_avg", "score", "LongBench-style average"),
]
FIGURES = ("short_recovery.png", "recovery_vs_tokens.png", "by_length.png")
TRAINING = "training_curves.png"


def aggregates(summary):
    """One row per variant and metric: the aggregate rows (a table from before seeds has only those)."""
    return summary[summary.row_type == "aggregate"] if "row_type" in summary else summary


def select(summary, task, metric, suite=None):
    rows = summary[(summary.task == task) & (summary.metric == metric)]
    return rows if suite is None else rows[rows.suite == suite]


def error_bars(rows, value, prefix):
    """[below, above] distances to the 95 % interval `prefix`_low/_high, or None when the table has none.
    A row without an interval keeps NaN, so matplotlib draws no bar for it (a zero-width cap would read
    as a tiny interval)."""
    low, high = f"{prefix}_low", f"{prefix}_high"
    if low not in rows:
        return None
    return [(rows[value] - rows[low]).clip(lower=0).to_numpy(dtype=float), (rows[high] - rows[value]).clip(lower=0).to_numpy(dtype=float)]


def short_recovery(summary, axes):
    summary = aggregates(summary)
    restored = summary[summary.restore != "none"].variant.unique().tolist()
    variants = [v for v in summary.variant.unique() if v != "native/none" and (v.endswith("/none") or v in restored)]
    for ax, (task, metric) in zip(axes, (HEADLINE, SHORT_AVERAGE)):
        rows = select(summary, task, metric, "short").set_index("variant").reindex(variants)
        bars = error_bars(rows, "recovery_vs_native_pct", "recovery_vs_native_ci95")
        ax.barh(range(len(variants)), rows.recovery_vs_native_pct.to_numpy(), color="tab:blue", xerr=bars, capsize=2)
        ax.axvline(100, color="black", linewidth=0.8)
        ax.set_yticks(range(len(variants)), variants, fontsize=7)
        ax.invert_yaxis()
        interval = "95 % interval" if bars is not None and np.isfinite(bars[0]).any() else "no interval in the table"
        ax.set_xlabel(f"{task} {metric}: % of native ({interval})")


SCALING_MARKERS = "os^Dvp*"


def restore_colours(summary):
    """{restore: colour} for every restore of the table but `none`: one restore, one colour in every figure."""
    return {restore: f"C{i % 10}" for i, restore in enumerate(sorted(set(summary.restore) - {"none"}))}


def recovery_vs_tokens(summary, axes):
    """One point per scaling and restore: the colour says the restore, the marker the scaling (a restore
    on two scalings is two points of one colour), a dotted line, named, for each unrestored scaling."""
    ax = axes[0]
    rows = select(aggregates(summary), *HEADLINE, "short")
    restored = rows[rows.restore != "none"]
    colours, scalings = restore_colours(summary), sorted(rows.scaling.unique())
    for (scaling, restore), group in restored.groupby(["scaling", "restore"]):
        ax.errorbar(group.train_tokens.clip(lower=1), group.recovery_vs_native_pct, capsize=2,
                    fmt=SCALING_MARKERS[scalings.index(scaling) % len(SCALING_MARKERS)],
                    color=colours[restore], label=f"{scaling}/{restore}",
                    yerr=error_bars(group, "recovery_vs_native_pct", "recovery_vs_native_ci95"))
    for row in rows.query("restore == 'none' and scaling != 'native'").itertuples():
        ax.axhline(row.recovery_vs_native_pct, color="grey", linewidth=0.6, linestyle=":")
        ax.text(0.99, row.recovery_vs_native_pct, row.variant, transform=ax.get_yaxis_transform(), fontsize=6,
                color="grey", ha="right", va="bottom")
    ax.axhline(100, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("restore training tokens")
    ax.set_ylabel("bits/byte: % of native")
    # One legend entry per restore (colour) and per scaling (marker), not per pair: a matrix has dozens.
    keys = [Line2D([], [], color=colours[r], marker="o", linestyle="", label=r) for r in sorted(restored.restore.unique())]
    keys += [Line2D([], [], color="grey", marker=SCALING_MARKERS[i % len(SCALING_MARKERS)], linestyle="", label=s)
             for i, s in enumerate(scalings) if s in set(restored.scaling)]
    ax.legend(handles=keys, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))


def length_panels(summary):
    """The BY_LENGTH panels the summary has rows for (at least one, so the figure always exists)."""
    present = [p for p in BY_LENGTH if not select(summary, *p[1:3], p[0]).dropna(subset=["context_length"]).empty]
    return present or BY_LENGTH[:1]


SCALING_LINESTYLES = ["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))]


def line_style(summary):
    """(scaling, restore) -> line colour and style: the colour says the restore (as in
    recovery_vs_tokens), the style the scaling; the native teacher is solid black and an unrestored
    scaling grey. With one colour per variant a study's 15 lines would reuse the 10 colours."""
    colours = restore_colours(summary)
    scalings = sorted(set(summary.scaling) - {"native"})

    def style(scaling, restore):
        if scaling == "native":
            return {"color": "black", "linestyle": "-"}
        color = "grey" if restore == "none" else colours[restore]
        return {"color": color, "linestyle": SCALING_LINESTYLES[scalings.index(scaling) % len(SCALING_LINESTYLES)]}

    return style


def by_length(summary, axes):
    summary = aggregates(summary)
    style = line_style(summary)
    for ax, (suite, task, metric, label) in zip(axes, length_panels(summary)):
        rows = select(summary, task, metric, suite).dropna(subset=["context_length"])
        for variant, group in rows.groupby("variant", sort=False):
            group = group.sort_values("context_length")
            ax.errorbar(group.context_length, group.value, yerr=error_bars(group, "value", "ci95"), marker="o",
                        markersize=3, capsize=2, label=variant, **style(group.scaling.iloc[0], group.restore.iloc[0]))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context length (tokens)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=6)


def train_logs(variants_dir):
    """{variant: {seed: train_log frame}} from a variants/ folder (restored variants' seed folders)."""
    logs = {}
    for path in sorted(Path(variants_dir).glob("*/*/seed*/train_log.csv")):
        seed_dir = path.parent
        variant = f"{seed_dir.parent.parent.name}/{seed_dir.parent.name}"
        logs.setdefault(variant, {})[seed_dir.name.removeprefix("seed")] = pd.read_csv(path)
    return logs


def training_curves(logs, axes):
    for ax, (variant, seeds) in zip(axes, logs.items()):
        for seed, log in seeds.items():
            ax.plot(log.step, log.loss, linewidth=0.9, label=f"seed {seed}")
        ax.set_title(variant, fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=6)


def draw(summary, out_dir, logs=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if summary.empty:
        raise ValueError("the summary holds no rows")
    title = f"{summary.experiment.iloc[0]} (config {summary.config_sha.iloc[0]}, git {summary.git_commit.iloc[0]})"
    panels = len(length_panels(aggregates(summary)))
    layouts = {  # figure -> (drawing function, its data, columns, size)
        FIGURES[0]: (short_recovery, summary, 2, (11, 0.35 * summary.variant.nunique() + 2)),
        FIGURES[1]: (recovery_vs_tokens, summary, 1, (7.5, 4.5)),
        FIGURES[2]: (by_length, summary, panels, (5 * panels, 4.5)),
    }
    if logs:
        layouts[TRAINING] = (training_curves, logs, len(logs), (4.5 * len(logs), 3.5))
    with atomic_dir(out_dir) as tmp:
        for name, (draw_panels, data, columns, size) in layouts.items():
            fig, axes = plt.subplots(1, columns, figsize=size, layout="constrained", squeeze=False)
            draw_panels(data, axes[0])
            fig.suptitle(title, fontsize=9)
            fig.savefig(tmp / name, dpi=120)
            plt.close(fig)


@stage_main
def main(argv=None):
    parser = stage_parser("ard plots", __doc__)
    parser.add_argument("--summary", required=True, help="summary.csv written by the report stage")
    parser.add_argument("--variants", help="the experiment's variants/ folder: also draw the training curves")
    parser.add_argument("--out", required=True, help="directory to write the PNG files into (replaced as a whole)")
    args = parser.parse_args(argv)
    draw(pd.read_csv(args.summary), Path(args.out), train_logs(args.variants) if args.variants else None)
