"""Stage `plots`: figures drawn from a summary.csv (the report stage's output), one PNG each.

  short_recovery.png     short-text recovery vs native (bits/byte and the short-suite average), per variant
  recovery_vs_tokens.png bits/byte recovery against the restore's training tokens (the token-cost view)
  by_length.png          perplexity by length and the needle / RULER / LongBench averages, per context
                         length (a panel for each of these the summary holds)

Reads only the CSV, so it also redraws a committed table (e.g. docs/results/gpu-demo/summary.csv).
"""
from pathlib import Path

import pandas as pd

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


def select(summary, task, metric, suite=None):
    rows = summary[(summary.task == task) & (summary.metric == metric)]
    return rows if suite is None else rows[rows.suite == suite]


def short_recovery(summary, axes):
    restored = summary[summary.restore != "none"].variant.unique().tolist()
    variants = [v for v in summary.variant.unique() if v != "native/none" and (v.endswith("/none") or v in restored)]
    for ax, (task, metric) in zip(axes, (HEADLINE, SHORT_AVERAGE)):
        rows = select(summary, task, metric, "short").set_index("variant").reindex(variants)
        ax.barh(range(len(variants)), rows.recovery_vs_native_pct.to_numpy(), color="tab:blue")
        ax.axvline(100, color="black", linewidth=0.8)
        ax.set_yticks(range(len(variants)), variants, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"{task} {metric}: % of native")


def recovery_vs_tokens(summary, ax):
    rows = select(summary, *HEADLINE, "short")
    for restore, group in rows[rows.restore != "none"].groupby("restore"):
        ax.scatter(group.train_tokens.clip(lower=1), group.recovery_vs_native_pct, label=restore)
    for value in rows.query("restore == 'none' and scaling != 'native'").recovery_vs_native_pct:
        ax.axhline(value, color="grey", linewidth=0.6, linestyle=":")
    ax.axhline(100, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("restore training tokens")
    ax.set_ylabel("bits/byte: % of native (dotted: unrestored)")
    ax.legend(fontsize=7)


def length_panels(summary):
    """The BY_LENGTH panels the summary has rows for (at least one, so the figure always exists)."""
    present = [p for p in BY_LENGTH if not select(summary, *p[1:3], p[0]).dropna(subset=["context_length"]).empty]
    return present or BY_LENGTH[:1]


def by_length(summary, axes):
    axes = axes if hasattr(axes, "__len__") else [axes]
    for ax, (suite, task, metric, label) in zip(axes, length_panels(summary)):
        rows = select(summary, task, metric, suite).dropna(subset=["context_length"])
        for variant, group in rows.groupby("variant", sort=False):
            group = group.sort_values("context_length")
            ax.plot(group.context_length, group.value, marker="o", markersize=3, label=variant)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context length (tokens)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=6)


def draw(summary, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if summary.empty:
        raise ValueError("the summary holds no rows")
    title = f"{summary.experiment.iloc[0]} (config {summary.config_sha.iloc[0]}, git {summary.git_commit.iloc[0]})"
    layouts = {  # figure -> (drawing function, columns, size)
        FIGURES[0]: (short_recovery, 2, (11, 0.35 * summary.variant.nunique() + 2)),
        FIGURES[1]: (recovery_vs_tokens, 1, (6, 4.5)),
        FIGURES[2]: (by_length, len(length_panels(summary)), (5 * len(length_panels(summary)), 4.5)),
    }
    with atomic_dir(out_dir) as tmp:
        for name, (draw_panels, columns, size) in layouts.items():
            fig, axes = plt.subplots(1, columns, figsize=size, layout="constrained")
            draw_panels(summary, axes)
            fig.suptitle(title, fontsize=9)
            fig.savefig(tmp / name, dpi=120)
            plt.close(fig)


@stage_main
def main(argv=None):
    parser = stage_parser("ard plots", __doc__)
    parser.add_argument("--summary", required=True, help="summary.csv written by the report stage")
    parser.add_argument("--out", required=True, help="directory to write the PNG files into (replaced as a whole)")
    args = parser.parse_args(argv)
    draw(pd.read_csv(args.summary), Path(args.out))
