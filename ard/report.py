"""Stage `report`: every evaluation's rows → results/summary.csv (tidy), summary.md and summary.html (pivots).

Rows, one per (variant, suite, task, metric, context length) and kind:
  per_seed   a restored variant's evaluation with one restoration seed (`seed` set)
  aggregate  every variant: the mean over its seeds, or the one evaluation of an unrestored variant
Aggregate rows carry n_seeds, mean, sd and a 95 % interval: the t-interval over seeds with two or more
(ci_method t_over_seeds), else value ± 1.96 · stderr (normal_stderr). Every row carries the recovery
columns with propagated intervals (ard/stats.py):
  recovery_vs_native_pct        100 · value / native       (lower-is-better metrics: 100 · native / value)
  recovery_vs_best_baseline_pct 100 · value / best         (best = best non-LinearARD restore of the same
                                                            scaling, `none` included; inverted likewise)
  gap_closed_pct                100 · (value − none) / (native − none); empty, with gap_closed_note, when
                                the gap native − none is inside its own 95 % interval
so that 100 always means "as good as the reference" and more is better; best_baseline names the restore
that row's best was. Aggregate rows of restored variants carry one-sided paired permutation p-values over
the evaluation samples (better_than_none_p, better_than_best_baseline_p, and for LinearARD restores
worse_than_best_baseline_p: the best baseline better than LinearARD) and, after Holm's correction across
the whole table, whether each is significant at 0.05. summary.md ends with the paper's two claims read
off the table (ard/claims.py).

`method` is the method a restore trains (a named variant's base method): what tells LinearARD restores
from the baselines, also in a table rebuilt without its config.

`--from-summary` rebuilds the summary from an existing summary.csv's measured columns instead of the
evaluation results (no per-sample scores, so no p-values): how committed tables are rerun.
`--partial` summarises the runs whose results exist and names the missing ones (an experiment still
coming back in parts); the tables then say how many runs they hold.
"""
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ard import config as ard_config
from ard import claims, restore_methods, stats
from ard.evaluation.samples import aggregation
from ard.io import atomic_file, read_json
from ard.paths import Layout
from ard.runtime import stage_main, stage_parser

PER_SEED, AGGREGATE = "per_seed", "aggregate"
COLUMNS = [
    "experiment", "variant", "scaling", "factor", "restore", "method", "train_tokens", "suite", "task", "metric",
    "context_length", "row_type", "seed", "n_seeds", "value", "stderr", "stderr_method", "mean", "sd",
    "ci95_low", "ci95_high", "ci_method", "native_value",
    "recovery_vs_native_pct", "recovery_vs_native_ci95_low", "recovery_vs_native_ci95_high",
    "recovery_vs_best_baseline_pct", "recovery_vs_best_baseline_ci95_low", "recovery_vs_best_baseline_ci95_high",
    "gap_closed_pct", "gap_closed_ci95_low", "gap_closed_ci95_high", "gap_closed_note",
    "better_than_none_p", "better_than_none_significant",
    "best_baseline", "better_than_best_baseline_p", "better_than_best_baseline_significant",
    "worse_than_best_baseline_p", "worse_than_best_baseline_significant",
    "higher_is_better", "beyond_max_position", "n_samples", "git_commit", "config_sha",
]
KEY = ["suite", "task", "metric", "context_length"]
# What one evaluation measured: the columns --from-summary keeps from an existing table.
MEASURED = ["experiment", "variant", "scaling", "factor", "restore", "method", "train_tokens", *KEY, "seed", "value", "stderr",
            "stderr_method", "higher_is_better", "beyond_max_position", "n_samples", "git_commit", "config_sha"]
ALPHA = 0.05


def git_commit():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=ard_config.REPO_ROOT).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               cwd=ard_config.REPO_ROOT).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def linearard_restores(frame):
    """The restores of a table that train LinearARD, by their method column (a named variant
    `{method: linearard}` is LinearARD whatever its name)."""
    return {restore for restore, method in zip(frame.restore, frame.method) if restore_methods.is_linearard(method)}


def _length(value):
    return None if value is None or pd.isna(value) else int(value)


def _key(row):
    return (row["suite"], row["task"], row["metric"], _length(row["context_length"]))


# ---------------------------------------------------------------- reading the evaluations


def train_tokens(layout, scaling, restore, seed):
    info = layout.variant(scaling, restore, seed) / "restore.json"
    return int(read_json(info)["train_tokens"]) if restore != "none" and info.is_file() else 0


def _sample_items(result, row):
    """(aggregation name, {doc_id: item}) of one row from its evaluation's per-sample scores, or None."""
    run = "short" if row["context_length"] is None else str(row["context_length"])
    out = result.get("results", {}).get(run)
    entries = result.get("samples", {}).get(run, {}).get(row["task"], [])
    entries = [e for e in entries if row["metric"] in e]
    if not out or not entries or len({e["filter"] for e in entries}) != 1:
        return None
    function = aggregation(out, row["task"], row["metric"])
    return (function.__name__ if function else None), {e["doc_id"]: e[row["metric"]] for e in entries}


def collect(config, layout, partial=False):
    """(one row per evaluation and metric, {(variant, seed, key): (aggregation, {doc_id: item})}, the
    missing result files, {variant: seeds left out}). A missing result is an error unless `partial`,
    which leaves its run out."""
    factors = {ard_config.scaling_name(s): s["factor"] for s in config["scalings"]}
    rows, samples, missing, left_out = [], {}, [], {}
    for scaling, restore, seed in ard_config.runs(config):
        paths = [layout.eval_result(scaling, restore, suite, seed) for suite in config["evaluation"]["suites"]]
        absent = [path for path in paths if not path.is_file()]
        if absent and not partial:
            raise FileNotFoundError(f"missing evaluation result {absent[0]} (run `ard evaluate` for it)")
        if absent:
            missing += absent
            left_out.setdefault(f"{scaling}/{restore}", []).append(seed)
            continue
        tokens = train_tokens(layout, scaling, restore, seed)
        method = "none" if restore == "none" else restore_methods.base_method(config, restore)
        for path in paths:
            result = read_json(path)
            for row in result["rows"]:
                row = {**row, "variant": f"{scaling}/{restore}", "scaling": scaling, "factor": factors.get(scaling, 1.0),
                       "restore": restore, "method": method, "train_tokens": tokens, "seed": seed}
                rows.append(row)
                items = _sample_items(result, row)
                if items:
                    samples[row["variant"], seed, _key(row)] = items
    if not rows:
        raise FileNotFoundError(f"no evaluation results under {layout.root} (first missing: {missing[0]})")
    frame = pd.DataFrame(rows)
    frame = frame.assign(experiment=config["experiment"], git_commit=git_commit(), config_sha=ard_config.config_sha(config))
    return frame.reindex(columns=MEASURED), samples, missing, left_out  # results from before a column existed leave it empty


def measured_from_summary(path):
    """The measured rows of an existing summary.csv: its per-seed and unrestored rows (a table written
    before seeds were an axis has one row per evaluation, the seed column holding the config's seed)."""
    frame = pd.read_csv(path)
    if "row_type" in frame:
        restored = frame.restore != "none"
        frame = frame[(restored & (frame.row_type == PER_SEED)) | (~restored & (frame.row_type == AGGREGATE))]
    frame = frame.reindex(columns=MEASURED)
    frame.loc[frame.restore == "none", "seed"] = None
    # tables from before the method column: every restore was named after its method
    frame["method"] = frame.method.where(frame.method.notna(), frame.restore)
    return frame


# ---------------------------------------------------------------- aggregating and comparing


def _finite(x):
    return x is not None and not pd.isna(x) and math.isfinite(float(x))


def aggregate_rows(measured):
    """Per-seed rows of restored variants, and one aggregate row per variant and key."""
    out = []
    for _, group in measured.groupby(["variant", *KEY], dropna=False, sort=False):
        first = group.iloc[0].to_dict()
        values = group.value.astype(float).tolist()
        stderrs = [float(s) for s in group.stderr if _finite(s)]
        if first["restore"] != "none":
            for row in group.to_dict("records"):
                low, high = stats.normal_interval(row["value"], float(row["stderr"]) if _finite(row["stderr"]) else None)
                out.append({**row, "row_type": PER_SEED, "n_seeds": 1, "ci95_low": low, "ci95_high": high,
                            "ci_method": "normal_stderr" if _finite(low) else "", "se_total": row["stderr"]})
        stderr = float(np.mean(stderrs)) if len(stderrs) == len(values) else math.nan
        if len(values) >= 2:
            mean, sd, low, high = stats.t_interval(values)
            ci_method, se_total = "t_over_seeds", math.hypot(sd / math.sqrt(len(values)), stderr)
        else:
            mean, sd, se_total = values[0], math.nan, stderr
            low, high = stats.normal_interval(mean, stderr if _finite(stderr) else None)
            ci_method = "normal_stderr" if _finite(low) else ""
        out.append({**first, "row_type": AGGREGATE, "seed": None, "n_seeds": len(values), "value": mean,
                    "mean": mean, "sd": sd, "stderr": stderr, "ci95_low": low, "ci95_high": high,
                    "ci_method": ci_method, "se_total": se_total,
                    "train_tokens": int(group.train_tokens.mean())})
    return pd.DataFrame(out)


def _references(frame):
    """Per key: {(scaling, restore): (aggregate value, its total standard error)}."""
    references = {}
    for row in frame[frame.row_type == AGGREGATE].to_dict("records"):
        references.setdefault(_key(row), {})[row["scaling"], row["restore"]] = (row["value"], row["se_total"])
    return references


def best_baseline(by_variant, scaling, higher_is_better, linearard):
    """The best restore of a scaling not in `linearard` (`none` included), as (restore, value, se), or None."""
    baselines = [(r, v, se) for (s, r), (v, se) in by_variant.items() if s == scaling and r not in linearard]
    if not baselines:
        return None
    return (max if higher_is_better else min)(baselines, key=lambda b: b[1])


def add_recovery(frame):
    """Recovery and gap-closed columns with propagated 95 % intervals, on every row."""
    references = _references(frame)
    linearard = linearard_restores(frame)
    columns = {name: [] for name in ("native_value", "best_baseline", "recovery_vs_native_pct", "recovery_vs_native_ci95_low",
                                     "recovery_vs_native_ci95_high", "recovery_vs_best_baseline_pct",
                                     "recovery_vs_best_baseline_ci95_low", "recovery_vs_best_baseline_ci95_high",
                                     "gap_closed_pct", "gap_closed_ci95_low", "gap_closed_ci95_high", "gap_closed_note")}

    def put(prefix, value_se):
        value, se = value_se
        low, high = stats.normal_interval(value, se if _finite(se) else None)
        columns[f"{prefix}_pct"].append(value)
        columns[f"{prefix}_ci95_low"].append(low)
        columns[f"{prefix}_ci95_high"].append(high)

    nan2 = (math.nan, math.nan)
    for row in frame.to_dict("records"):
        by_variant = references[_key(row)]
        higher = bool(row["higher_is_better"])
        se = float(row["se_total"]) if _finite(row["se_total"]) else math.nan
        native, se_native = by_variant.get((ard_config.NATIVE, "none"), nan2)
        none, se_none = by_variant.get((row["scaling"], "none"), nan2)
        best = best_baseline(by_variant, row["scaling"], higher, linearard)
        scaled = row["scaling"] != ard_config.NATIVE
        columns["native_value"].append(native)
        columns["best_baseline"].append(best[0] if scaled and best else None)
        put("recovery_vs_native", stats.ratio_pct(row["value"], native, higher, se, se_native))
        put("recovery_vs_best_baseline", stats.ratio_pct(row["value"], best[1], higher, se, best[2]) if scaled and best else nan2)
        closed, se_closed, note = stats.gap_closed_pct(row["value"], none, native, se, se_none, se_native) if scaled else (math.nan, math.nan, "")
        put("gap_closed", (closed, se_closed))
        columns["gap_closed_note"].append(note)
    return frame.assign(**columns)


def _doc_items(samples, variant, seeds, key):
    """(aggregation, {doc_id: item averaged over the seeds}) of one variant and key, or None."""
    found = [samples.get((variant, seed, key)) for seed in seeds]
    if not found or any(f is None for f in found):
        return None
    docs = sorted(set.intersection(*(set(items) for _, items in found)))
    return found[0][0], {d: stats.mean_over_seeds([items[d] for _, items in found]) for d in docs}


def add_tests(frame, samples):
    """p-values of restored variants' aggregate rows against `none` and the best baseline (and, for
    LinearARD restores, of the best baseline against them), Holm-corrected together."""
    seeds = frame[frame.row_type == PER_SEED].groupby("variant").seed.unique().to_dict()
    references = _references(frame)
    linearard = linearard_restores(frame)

    def items(variant, key):
        return _doc_items(samples, variant, seeds.get(variant, [None]), key)

    # each row's tests: (items, reference items, aggregation, higher is better), or None where there is
    # nothing to test; "worse" is the "better" test with the two sides swapped
    families = {"better_than_none": [], "better_than_best_baseline": [], "worse_than_best_baseline": []}
    for row in frame.to_dict("records"):
        tests = dict.fromkeys(families)
        if row["row_type"] == AGGREGATE and row["restore"] != "none":
            key, higher = _key(row), bool(row["higher_is_better"])
            mine = items(row["variant"], key)
            best = best_baseline(references[key], row["scaling"], higher, linearard)
            best_name = best[0] if best else None
            against = [("better_than_none", "none", False), ("better_than_best_baseline", best_name, False)]
            if row["restore"] in linearard:
                against.append(("worse_than_best_baseline", best_name, True))
            for family, reference, swapped in against:
                theirs = items(f"{row['scaling']}/{reference}", key) if reference else None
                if mine is None or theirs is None or reference == row["restore"]:
                    continue
                docs = sorted(set(mine[1]) & set(theirs[1]))
                pair = ([mine[1][d] for d in docs], [theirs[1][d] for d in docs])
                tests[family] = (*(pair[::-1] if swapped else pair), mine[0], higher)
        for family, test in tests.items():
            families[family].append(test)
    # every test may draw enough flips to stay significant after Holm's correction over all of them
    tests = [test for family in families.values() for test in family]
    count = sum(test is not None for test in tests)
    permutations = stats.permutations_for(count, ALPHA)
    pvalues = [math.nan if test is None else stats.paired_pvalue(*test, max_permutations=permutations)
               for test in tqdm(tests, desc="permutation tests", unit="row", disable=count < 50)]
    significant = [None if math.isnan(p) else bool(p < ALPHA) for p in stats.holm(pvalues)]
    n, columns = len(frame), {}
    for i, family in enumerate(families):
        columns[f"{family}_p"] = pvalues[i * n:(i + 1) * n]
        columns[f"{family}_significant"] = significant[i * n:(i + 1) * n]
    return frame.assign(**columns)


def summarise(measured, samples=None):
    frame = add_recovery(aggregate_rows(measured))
    frame = add_tests(frame, samples or {})
    frame["context_length"] = frame["context_length"].astype("Int64")
    frame["seed"] = frame["seed"].astype("Int64")
    return frame.reindex(columns=COLUMNS)


# ---------------------------------------------------------------- markdown


def _cell(row):
    """`value ± half-width` with * / † / ‡ marking significance: better than none / better than the best
    baseline / worse than it."""
    if pd.isna(row["value"]):
        return ""
    text = f"{row['value']:.4g}"
    if _finite(row["ci95_low"]) and _finite(row["ci95_high"]):
        text += f" ± {(row['ci95_high'] - row['ci95_low']) / 2:.2g}"
    marks = ("*" if claims.flagged(row["better_than_none_significant"]) else "") + (
        "†" if claims.flagged(row["better_than_best_baseline_significant"]) else "") + (
        "‡" if claims.flagged(row["worse_than_best_baseline_significant"]) else "")
    return text + marks


def _markdown_table(frame):
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, float) else ("" if v is None or v is pd.NA else str(v)) for v in row]
        lines.append("| " + " | ".join(c.replace("nan", "") for c in cells) + " |")
    return "\n".join(lines)


LEGEND = ("Each cell: the mean over seeds (or the one evaluation) ± the half-width of its 95 % interval;"
          " `*` better than the unrestored scaling, `†` better than the best baseline, `‡` (LinearARD restores)"
          " worse than the best baseline (paired permutation tests, p < 0.05 after Holm's correction across"
          " the table). `rec%` columns: recovery_vs_native_pct"
          " (100 = as good as the native teacher).")


def pivot_tables(frame):
    """[(suite, table)]: per suite, one row per task/metric/length and a column per variant (with rec%)."""
    aggregate = frame[frame.row_type == AGGREGATE]
    variants = list(dict.fromkeys(aggregate["variant"]))
    aggregate = aggregate.assign(
        cell=aggregate.apply(_cell, axis=1),
        context_length=aggregate["context_length"].astype(object).where(aggregate["context_length"].notna(), "short"))
    tables = []
    for suite, block in aggregate.groupby("suite", sort=False):
        cells = block.pivot_table(index=KEY, columns="variant", values="cell", aggfunc="first", sort=False)
        recovery = block.pivot_table(index=KEY, columns="variant", values="recovery_vs_native_pct", sort=False)
        table = pd.DataFrame(index=cells.index)
        for variant in variants:
            if variant in cells:
                table[variant] = cells[variant]
            if variant in recovery and not variant.startswith(ard_config.NATIVE):
                table[f"{variant} rec%"] = recovery[variant]
        tables.append((suite, table.reset_index()))
    return tables


def _provenance(frame):
    first = frame.iloc[0]
    runs = frame[(frame.row_type == PER_SEED) | (frame.restore == "none")][["variant", "seed"]].drop_duplicates()
    return (f"{first['experiment']}: recovery summary",
            f"git {first['git_commit']} · config {first['config_sha']} · {len(runs)} evaluated runs")


def partial_note(left_out):
    """The line a partial summary carries: which runs it leaves out."""
    if not left_out:
        return None
    runs = "; ".join(f"{variant} (seed {', '.join(map(str, seeds))})" for variant, seeds in left_out.items())
    count = sum(len(seeds) for seeds in left_out.values())
    return f"Partial: {count} runs not evaluated yet, left out: {runs}."


def to_markdown(frame, note=None):
    title, provenance = _provenance(frame)
    sections = [f"# {title}", "", provenance, "", *([note, ""] if note else []), LEGEND, ""]
    for suite, table in pivot_tables(frame):
        sections += [f"## {suite}", "", _markdown_table(table), ""]
    lines = claims.claim_lines(frame[frame.row_type == AGGREGATE])
    if lines:
        sections += [f"## {claims.HEADING}", "", claims.INTRO, "", *(f"- {line}" for line in lines), ""]
    return "\n".join(sections)


def to_html(frame, note=None):
    """The same tables as one standalone HTML page (what `snakemake --report` shows)."""
    from html import escape

    title, provenance = _provenance(frame)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
             "<style>body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse;margin-bottom:2em}"
             " td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} th{background:#eee}</style></head><body>",
             f"<h1>{escape(title)}</h1><p>{escape(provenance)}</p>",
             f"<p>{escape(note)}</p>" if note else "", f"<p>{escape(LEGEND)}</p>"]
    for suite, table in pivot_tables(frame):
        parts += [f"<h2>{escape(suite)}</h2>", table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}")]
    lines = claims.claim_lines(frame[frame.row_type == AGGREGATE])
    if lines:
        parts += [f"<h2>{escape(claims.HEADING)}</h2><p>{escape(claims.INTRO)}</p><ul>",
                  *(f"<li>{escape(line)}</li>" for line in lines), "</ul>"]
    return "".join(parts) + "</body></html>\n"


def write(frame, out_csv, out_md, out_html=None, note=None):
    with atomic_file(out_csv) as handle:
        frame.to_csv(handle, index=False)
    with atomic_file(out_md) as handle:
        handle.write(to_markdown(frame, note))
    if out_html:
        with atomic_file(out_html) as handle:
            handle.write(to_html(frame, note))


def build(config, out_csv, out_md, out_html=None, partial=False):
    measured, samples, missing, left_out = collect(config, Layout(config["outdir"]), partial)
    if missing:
        print(f"partial summary: {len(missing)} evaluation results missing, e.g. {missing[0]}", flush=True)
    write(summarise(measured, samples), out_csv, out_md, out_html, partial_note(left_out))


@stage_main
def main(argv=None):
    parser = stage_parser("ard report", __doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="experiment config (YAML): summarise its evaluation results")
    source.add_argument("--from-summary", help="an existing summary.csv: recompute every derived column from its measured ones")
    parser.add_argument("--out-csv", required=True, help="tidy summary CSV to write")
    parser.add_argument("--out-md", required=True, help="markdown pivot to write")
    parser.add_argument("--out-html", help="the same pivot as an HTML page (optional)")
    parser.add_argument("--partial", action="store_true",
                        help="with --config: summarise the runs whose results exist, leave out the others")
    args = parser.parse_args(argv)
    html = Path(args.out_html) if args.out_html else None
    if args.from_summary:
        write(summarise(measured_from_summary(args.from_summary)), Path(args.out_csv), Path(args.out_md), html)
    else:
        build(ard_config.load(args.config), Path(args.out_csv), Path(args.out_md), html, args.partial)
