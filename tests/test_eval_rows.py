"""rows_from_results: lm-eval result dicts → tidy rows, per-length averages, lm-eval RULER length metrics."""
import pytest

from ard.evaluation.rows import rows_from_results


def _out(task, metrics, n, config_metrics=None, hib=None):
    return {
        "results": {task: {"alias": task, **metrics}},
        "configs": {task: {"metric_list": [{"metric": m} for m in config_metrics or []]}},
        "higher_is_better": {task: hib or {}},
        "n-samples": {task: {"original": n, "effective": n}},
    }


def _merge(*outs):
    merged = {"results": {}, "configs": {}, "higher_is_better": {}, "n-samples": {}}
    for out in outs:
        for key in merged:
            merged[key].update(out[key])
    return merged


def test_per_length_rows_and_average_of_primary_metrics():
    def at(length, niah, qa):
        return _merge(
            _out("niah", {"string_match_all,none": niah, "string_match_all_stderr,none": 0.1}, 10, ["string_match_all"]),
            _out("qa", {"f1_stderr,none": "N/A", "f1,none": qa, "em,none": 0.0}, 8, ["f1", "em"], {"f1": True}),
        )

    rows = rows_from_results("ruler", [(256, at(256, 1.0, 0.5), ["niah", "qa"]), (1024, at(1024, 0.0, 0.25), ["niah", "qa"])], 512)
    by = {(r["task"], r["metric"], r["context_length"]): r for r in rows}
    assert by[("niah", "string_match_all", 256)]["stderr"] == 0.1
    assert by[("qa", "f1", 256)]["stderr"] is None and by[("qa", "em", 256)]["value"] == 0.0
    assert not by[("niah", "string_match_all", 256)]["beyond_max_position"]
    assert by[("niah", "string_match_all", 1024)]["beyond_max_position"]
    assert by[("ruler_avg", "score", 256)]["value"] == pytest.approx(0.75)  # f1 is qa's primary, not em
    assert by[("ruler_avg", "score", 1024)]["value"] == pytest.approx(0.125)
    assert by[("ruler_avg", "score", 256)]["n_samples"] == 18
    assert {r["suite"] for r in rows} == {"ruler"}


def test_short_suite_average_leaves_out_lower_is_better_metrics_and_unlisted_tasks():
    out = _merge(
        _out("ppl", {"word_perplexity,none": 30.0, "bits_per_byte,none": 1.2}, 5, ["word_perplexity"],
             {"word_perplexity": False, "bits_per_byte": False}),
        _out("mc", {"acc,none": 0.4, "acc_norm,none": 0.5}, 5, ["acc_norm", "acc"]),
        _out("other", {"acc,none": 1.0}, 5, ["acc"]),
    )
    rows = rows_from_results("short", [(None, out, ["ppl", "mc"])], 256)
    assert {r["task"] for r in rows} == {"ppl", "mc", "short_avg"}
    (avg,) = [r for r in rows if r["task"] == "short_avg"]
    assert avg["value"] == 0.5 and avg["context_length"] is None and avg["higher_is_better"]
    ppl = [r for r in rows if r["task"] == "ppl"]
    assert all(not r["higher_is_better"] and r["context_length"] is None for r in ppl)


def test_lm_eval_ruler_length_metrics_become_context_lengths():
    out = _out("niah_single_1", {"4096,none": 0.9, "8192,none": 0.5, "16384,none": -1}, 20, ["4096", "8192", "16384"])
    rows = rows_from_results("real_ruler", [(None, out, ["niah_single_1"])], 4096)
    task_rows = {r["context_length"]: r for r in rows if r["task"] == "niah_single_1"}
    assert set(task_rows) == {4096, 8192}
    assert task_rows[8192]["metric"] == "score" and task_rows[8192]["beyond_max_position"]
    assert {r["context_length"] for r in rows if r["task"] == "real_ruler_avg"} == {4096, 8192}


def test_group_sample_counts_sum_their_subtasks():
    out = {
        "results": {"mmlu": {"acc,none": 0.3, "acc_stderr,none": 0.01}, "mmlu_a": {"acc,none": 0.2}},
        "group_subtasks": {"mmlu": ["mmlu_a", "mmlu_b"]},
        "higher_is_better": {"mmlu": {"acc": True}},
        "n-samples": {"mmlu_a": {"effective": 3}, "mmlu_b": {"effective": 4}},
        "configs": {},
    }
    (row, _avg) = rows_from_results("real_short", [(None, out, ["mmlu"])], 4096)
    assert row["n_samples"] == 7 and row["stderr"] == 0.01


def test_a_task_missing_from_the_results_is_an_error():
    with pytest.raises(ValueError, match="no result for task b"):
        rows_from_results("s", [(None, _out("a", {"acc,none": 1.0}, 1, ["acc"]), ["a", "b"])], 64)
