"""Stage `report`: every variant's lm-eval rows → results/summary.csv (tidy) and summary.md (pivot).

Recovery columns, each per (suite, task, metric, context length):
  recovery_vs_native_pct        100 · value / native       (lower-is-better metrics: 100 · native / value)
  recovery_vs_best_baseline_pct 100 · value / best         (best = best non-LinearARD restore of the same
                                                            scaling, `none` included; inverted likewise)
  gap_closed_pct                100 · (value − none) / (native − none)   (the same for both directions)
so that 100 always means "as good as the reference" and more is better.
"""
import math
import subprocess
from pathlib import Path

import pandas as pd

from ard import config as ard_config
from ard.io import atomic_file, read_json
from ard.paths import Layout
from ard.runtime import stage_main, stage_parser

COLUMNS = [
    "experiment", "variant", "scaling", "factor", "restore", "train_tokens", "suite", "task", "metric",
    "context_length", "value", "stderr", "native_value", "recovery_vs_native_pct",
    "recovery_vs_best_baseline_pct", "gap_closed_pct", "higher_is_better", "beyond_max_position",
    "n_samples", "seed", "git_commit", "config_sha",
]
KEY = ["suite", "task", "metric", "context_length"]


def git_commit():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=ard_config.REPO_ROOT).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               cwd=ard_config.REPO_ROOT).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def is_linearard(restore):
    return "linearard" in restore.split("+")


def ratio_pct(value, reference, higher_is_better):
    if reference is None or value is None or math.isnan(reference) or math.isnan(value):
        return math.nan
    numerator, denominator = (value, reference) if higher_is_better else (reference, value)
    return 100.0 * numerator / denominator if denominator else math.nan


def gap_closed_pct(value, none_value, native_value):
    if any(math.isnan(x) for x in (value, none_value, native_value)) or native_value == none_value:
        return math.nan
    return 100.0 * (value - none_value) / (native_value - none_value)


def train_tokens(layout, scaling, restore):
    info = layout.variant(scaling, restore) / "restore.json"
    return int(read_json(info)["train_tokens"]) if restore != "none" and info.is_file() else 0


def collect_rows(config, layout):
    factors = {ard_config.scaling_name(s): s["factor"] for s in config["scalings"]}
    rows = []
    for scaling, restore in ard_config.variants(config):
        tokens = train_tokens(layout, scaling, restore)
        for suite in config["evaluation"]["suites"]:
            path = layout.eval_result(scaling, restore, suite)
            if not path.is_file():
                raise FileNotFoundError(f"missing evaluation result {path} (run `ard evaluate` for it)")
            for row in read_json(path)["rows"]:
                rows.append({
                    **row,
                    "variant": f"{scaling}/{restore}",
                    "scaling": scaling,
                    "factor": factors.get(scaling, 1.0),
                    "restore": restore,
                    "train_tokens": tokens,
                })
    return pd.DataFrame(rows)


def _key(row):
    length = row["context_length"]
    return (row["suite"], row["task"], row["metric"], None if pd.isna(length) else int(length))


def add_recovery(frame):
    """Fill the reference columns by looking up, per row, the native, `none` and best-baseline values."""
    values = {}
    for row in frame.to_dict("records"):
        values.setdefault(_key(row), {})[(row["scaling"], row["restore"])] = (row["value"], row["higher_is_better"])
    native_col, vs_native, vs_baseline, gap = [], [], [], []
    for row in frame.to_dict("records"):
        by_variant = values[_key(row)]
        higher = bool(row["higher_is_better"])
        native = by_variant.get((ard_config.NATIVE, "none"), (math.nan, higher))[0]
        none = by_variant.get((row["scaling"], "none"), (math.nan, higher))[0]
        baselines = [v for (s, r), (v, _) in by_variant.items() if s == row["scaling"] and not is_linearard(r)]
        best = (max if higher else min)(baselines) if baselines else math.nan
        scaled = row["scaling"] != ard_config.NATIVE
        native_col.append(native)
        vs_native.append(ratio_pct(row["value"], native, higher))
        vs_baseline.append(ratio_pct(row["value"], best, higher) if scaled else math.nan)
        gap.append(gap_closed_pct(row["value"], none, native) if scaled else math.nan)
    return frame.assign(native_value=native_col, recovery_vs_native_pct=vs_native,
                        recovery_vs_best_baseline_pct=vs_baseline, gap_closed_pct=gap)


def summarise(config, layout):
    frame = collect_rows(config, layout)
    frame = add_recovery(frame)
    frame = frame.assign(experiment=config["experiment"], seed=config["seed"], git_commit=git_commit(),
                         config_sha=ard_config.config_sha(config))
    frame["context_length"] = frame["context_length"].astype("Int64")
    return frame[COLUMNS]


def _markdown_table(frame):
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, float) else ("" if v is None or v is pd.NA else str(v)) for v in row]
        lines.append("| " + " | ".join(c.replace("nan", "") for c in cells) + " |")
    return "\n".join(lines)


def to_markdown(frame):
    variants = list(dict.fromkeys(frame["variant"]))
    sections = [f"# {frame['experiment'].iloc[0]}: recovery summary", "",
                f"git {frame['git_commit'].iloc[0]} · config {frame['config_sha'].iloc[0]} · seed {frame['seed'].iloc[0]}",
                "", "Values per variant; `rec%` columns are recovery_vs_native_pct (100 = as good as the native teacher).", ""]
    index = KEY
    frame = frame.assign(context_length=frame["context_length"].astype(object).where(frame["context_length"].notna(), "short"))
    for suite, block in frame.groupby("suite", sort=False):
        values = block.pivot_table(index=index, columns="variant", values="value", sort=False)
        recovery = block.pivot_table(index=index, columns="variant", values="recovery_vs_native_pct", sort=False)
        table = pd.DataFrame(index=values.index)
        for variant in variants:
            if variant in values:
                table[variant] = values[variant]
            if variant in recovery and not variant.startswith(ard_config.NATIVE):
                table[f"{variant} rec%"] = recovery[variant]
        sections += [f"## {suite}", "", _markdown_table(table.reset_index()), ""]
    return "\n".join(sections)


def build(config, out_csv, out_md):
    frame = summarise(config, Layout(config["outdir"]))
    with atomic_file(out_csv) as handle:
        frame.to_csv(handle, index=False)
    with atomic_file(out_md) as handle:
        handle.write(to_markdown(frame))


@stage_main
def main(argv=None):
    parser = stage_parser("ard report", __doc__)
    parser.add_argument("--config", required=True, help="experiment config (YAML)")
    parser.add_argument("--out-csv", required=True, help="tidy summary CSV to write")
    parser.add_argument("--out-md", required=True, help="markdown pivot to write")
    args = parser.parse_args(argv)
    build(ard_config.load(args.config), Path(args.out_csv), Path(args.out_md))
