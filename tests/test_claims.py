"""The claims section: its verdicts on hand-made aggregate rows, where every number is known."""
import math

import pandas as pd
import pytest

from ard import claims

NAN = math.nan


def _row(variant, suite, task, value, length=None, *, tokens=0, seeds=1, ci=(NAN, NAN), best=None, pct=NAN,
         better=None, worse=None, beyond=False, metric="acc"):
    scaling, restore = variant.split("/")
    return {"variant": variant, "scaling": scaling, "restore": restore, "method": restore, "suite": suite,
            "task": task, "metric": metric, "context_length": length, "value": value, "n_seeds": seeds,
            "ci95_low": ci[0], "ci95_high": ci[1], "train_tokens": tokens, "higher_is_better": True,
            "best_baseline": best, "recovery_vs_best_baseline_pct": pct,
            "better_than_best_baseline_p": NAN if better is None else (0.001 if better else 0.5),
            "better_than_best_baseline_significant": better,
            "worse_than_best_baseline_p": NAN if worse is None else (0.001 if worse else 0.5),
            "worse_than_best_baseline_significant": worse, "beyond_max_position": beyond}


def _table(linearard_average, ci, long_results):
    """native (window 8K), a CPT baseline at 10x the tokens with short average 0.70, and LinearARD with
    `linearard_average` (interval `ci`) and (better, worse) test results at 16K for each long task."""
    rows = [_row("native/none", "short", "short_avg", 0.72), _row("native/none", "ruler", "niah", 0.5, 2048),
            _row("native/none", "ruler", "niah", 0.0, 16384, beyond=True),
            _row("linear-4x/cpt", "short", "short_avg", 0.70, tokens=1000),
            _row("linear-4x/linearard", "short", "short_avg", linearard_average, tokens=100, seeds=3, ci=ci,
                 best="cpt", pct=100 * linearard_average / 0.70),
            _row("linear-4x/linearard", "short", "cloze", 0.6, tokens=100, seeds=3, best="cpt", better=False,
                 worse=True),
            _row("linear-4x/linearard", "ruler", "niah", 0.4, 2048, best="cpt", better=True, worse=False)]
    rows += [_row("linear-4x/linearard", "ruler", task, 0.1, 16384, best="cpt", better=better, worse=worse)
             for task, (better, worse) in long_results.items()]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("average, ci, verdict", [
    (0.69, (0.688, 0.692), "Claim 1: holds."),
    (0.66, (0.60, 0.72), "Claim 1: not settled (the interval spans 98 %)."),
    (0.63, (0.62, 0.64), "Claim 1: does not hold."),
])
def test_claim_1_verdict_follows_the_interval_against_98_percent(average, ci, verdict):
    lines = claims.claim_lines(_table(average, ci, {"niah": (False, False)}))
    (short,) = [line for line in lines if "short suite" in line]
    assert f"its average {average:.4g} is {100 * average / 0.7:.1f} % of linear-4x/cpt's 0.7" in short
    assert "training tokens 100 against 1,000 (10.0×)" in short
    assert "the best baseline better on 1 of 1 (cloze acc), LinearARD on 0" in short
    assert short.endswith(verdict)


def test_claim_2_counts_rows_beyond_the_native_window_only():
    lines = claims.claim_lines(_table(0.69, (0.688, 0.692), {"niah": (False, True), "vt": (True, False),
                                                             "cwe": (False, False)}))
    (long,) = [line for line in lines if "16384 tokens" in line]
    # the 2K row LinearARD wins is inside the window and does not count
    assert "of 3 tested rows the best baseline is better on 1 (by suite: ruler 1; by baseline: cpt 1)" in long
    assert long.endswith("LinearARD on 1, neither on 1. Claim 2: does not hold.")
    lines = claims.claim_lines(_table(0.69, (0.688, 0.692), {"niah": (True, False), "vt": (False, False)}))
    assert lines[-1].endswith("best baseline is better on 0, LinearARD on 1, neither on 1. Claim 2: holds.")


def test_rows_without_tests_are_said_to_be_untested():
    table = _table(0.69, (0.688, 0.692), {"niah": (None, None)})
    table[["better_than_best_baseline_p", "worse_than_best_baseline_p"]] = NAN  # a table rebuilt from a summary
    short, long = claims.claim_lines(table)
    assert "No paired tests on its task rows" in short and short.endswith("Claim 1: holds.")
    assert long.endswith("no paired tests on these rows (no per-sample scores). Claim 2: not tested.")


def test_a_scaling_without_a_baseline_restoration_is_not_judged():
    table = _table(0.69, (0.688, 0.692), {"niah": (False, False)})
    table = table[table.restore != "cpt"].assign(best_baseline="none")  # only `none` to compare with
    assert claims.claim_lines(table) == [
        "linear-4x/linearard: no baseline restoration of linear-4x in this table. Claims: not tested."]


def test_no_linearard_variant_means_no_claims():
    table = _table(0.69, (0.688, 0.692), {"niah": (False, False)})
    assert claims.claim_lines(table[table.restore != "linearard"]) == []
