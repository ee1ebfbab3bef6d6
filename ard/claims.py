"""The paper's two claims, read off a summary's aggregate rows: the section summary.md ends with.

Claim 1, short text: LinearARD keeps at least 98 % of the best baseline's short-text score with far fewer
training tokens. Read on each short-text suite's average row: LinearARD's value as a percentage of the
best baseline's (recovery_vs_best_baseline_pct; its interval comes from LinearARD's seeds alone, the
baseline's value taken as exact), beside both training budgets; and on that suite's task rows, how many
paired tests each side wins after Holm's correction.
Claim 2, beyond the native window: LinearARD is at least as good as the best baseline at the lengths the
native teacher cannot read (the lengths of its rows beyond_max_position). Read on the long suites' task
rows at those lengths: how many rows the best baseline wins, how many LinearARD wins, how many neither.

"Best baseline" is the report's: per row, the best non-LinearARD restore of the same scaling. The verdicts
are mechanical; the tables above them are what to read. Only restores whose method is LinearARD alone are
judged (a sequence such as linearard+cpt trains more than the claim is about), and only on scalings with
a baseline restoration to compare with.
"""
from collections import Counter

import pandas as pd

from ard import config as ard_config
from ard import restore_methods, stats

CLAIM_1_PCT = 98.0
HEADING = "The paper's claims, read off this table"
INTRO = ("Claim 1: LinearARD keeps ≥ 98 % of the best baseline's short-text score with far fewer tokens."
         " Claim 2: beyond the native window it is at least as good as the best baseline. The best baseline"
         " is chosen per row (the best non-LinearARD restore of the scaling); \"better\" and \"worse\" are"
         " the table's paired permutation tests after Holm's correction.")


def flagged(value):
    """A significance cell read as a bool: empty (a row without that test) is False."""
    return not pd.isna(value) and bool(value)


def _flags(series):
    return series.map(flagged)


def _is_average(task):
    return str(task).endswith("_avg")


def _duel(rows):
    """(tested rows, rows the best baseline wins, rows LinearARD wins)."""
    tested = rows[rows.better_than_best_baseline_p.notna() | rows.worse_than_best_baseline_p.notna()]
    return (tested, tested[_flags(tested.worse_than_best_baseline_significant)],
            tested[_flags(tested.better_than_best_baseline_significant)])


def _percent(value, best, higher):
    return stats.ratio_pct(value, best, higher)[0]


def _claim_1(aggregate, row):
    """One sentence on a LinearARD variant's short-suite average row, or None without a baseline."""
    if pd.isna(row.best_baseline) or pd.isna(row.recovery_vs_best_baseline_pct):
        return None
    higher = bool(row.higher_is_better)
    same = aggregate[(aggregate.scaling == row.scaling) & (aggregate.suite == row.suite)
                     & aggregate.context_length.isna()]
    base = same[(same.restore == row.best_baseline) & (same.task == row.task) & (same.metric == row.metric)].iloc[0]
    pct = row.recovery_vs_best_baseline_pct
    text = (f"{row.variant}, {row.suite} suite: its average {row.value:.4g} is {pct:.1f} % of"
            f" {row.scaling}/{row.best_baseline}'s {base.value:.4g}")
    bounds = None
    if row.n_seeds >= 2 and pd.notna(row.ci95_low) and pd.notna(row.ci95_high):
        bounds = sorted(_percent(v, base.value, higher) for v in (row.ci95_low, row.ci95_high))
        text += f" ({bounds[0]:.1f}–{bounds[1]:.1f} % over LinearARD's {row.n_seeds} seeds)"
    tokens, base_tokens = int(row.train_tokens), int(base.train_tokens)
    text += f"; training tokens {tokens:,} against {base_tokens:,}"
    if tokens > 0 and base_tokens > 0:
        text += f" ({base_tokens / tokens:.1f}×)"
    tasks = same[(same.variant == row.variant) & ~same.task.map(_is_average)]
    tested, baseline_wins, linearard_wins = _duel(tasks)
    if not len(tested):
        text += ". No paired tests on its task rows (no per-sample scores)."
    else:
        text += f". Its task rows: the best baseline better on {len(baseline_wins)} of {len(tested)}"
        if len(baseline_wins):
            text += " (" + ", ".join(f"{r.task} {r.metric}" for r in baseline_wins.itertuples()) + ")"
        text += f", LinearARD on {len(linearard_wins)}."
    if bounds is None:
        verdict = f"{'holds' if pct >= CLAIM_1_PCT else 'does not hold'} on one seed (no interval)"
    elif bounds[1] < CLAIM_1_PCT:
        verdict = "does not hold"
    elif bounds[0] >= CLAIM_1_PCT:
        verdict = "holds"
    else:
        verdict = f"not settled (the interval spans {CLAIM_1_PCT:g} %)"
    if base_tokens <= tokens:
        verdict += "; the best baseline used no more tokens, so \"far fewer tokens\" is not tested here"
    return f"{text} Claim 1: {verdict}."


def _claim_2(aggregate, variant, lengths):
    rows = aggregate[(aggregate.variant == variant) & aggregate.context_length.isin(lengths)
                     & ~aggregate.task.map(_is_average)]
    tested, baseline_wins, linearard_wins = _duel(rows)
    where = ", ".join(str(int(length)) for length in sorted(lengths))
    if not len(tested):
        return f"{variant} at {where} tokens: no paired tests on these rows (no per-sample scores). Claim 2: not tested."
    text = (f"{variant} at {where} tokens: of {len(tested)} tested rows the best baseline is better on"
            f" {len(baseline_wins)}")
    if len(baseline_wins):
        suites = ", ".join(f"{s} {n}" for s, n in Counter(baseline_wins.suite).most_common())
        winners = ", ".join(f"{r} {n}" for r, n in Counter(baseline_wins.best_baseline).most_common())
        text += f" (by suite: {suites}; by baseline: {winners})"
    text += f", LinearARD on {len(linearard_wins)}, neither on {len(tested) - len(baseline_wins) - len(linearard_wins)}."
    return f"{text} Claim 2: {'does not hold' if len(baseline_wins) else 'holds'}."


def native_window_lengths(aggregate):
    """The context lengths the native teacher's own rows mark beyond its window."""
    native = aggregate[(aggregate.variant == f"{ard_config.NATIVE}/none") & _flags(aggregate.beyond_max_position)]
    return set(native.context_length.dropna())


def claim_lines(aggregate):
    """Sentences on the two claims for every LinearARD-only variant of a table's aggregate rows."""
    variants = list(dict.fromkeys(aggregate[aggregate.method == "linearard"].variant))
    lengths = native_window_lengths(aggregate)
    lines = []
    for variant in variants:
        mine = aggregate[aggregate.variant == variant]
        scaling = mine.scaling.iloc[0]
        restores = aggregate[(aggregate.scaling == scaling) & (aggregate.restore != "none")]
        if restores.method.map(restore_methods.is_linearard).all():
            lines.append(f"{variant}: no baseline restoration of {scaling} in this table. Claims: not tested.")
            continue
        averages = mine[mine.context_length.isna() & mine.task.map(_is_average)]
        lines += [line for row in averages.itertuples() if (line := _claim_1(aggregate, row))]
        if lengths:
            lines.append(_claim_2(aggregate, variant, lengths))
    return lines
