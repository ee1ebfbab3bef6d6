"""Tidy rows (one per task, metric and context length) from lm-eval's result dicts, and the per-length
`<suite>_avg` rows the pipeline computes itself (never lm-eval's group aggregate)."""
AVERAGE_METRIC = "score"


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _primary_first(out, task, key):
    """Sort key putting the task config's first metric_list entry (its primary metric) first."""
    metric_list = out.get("configs", {}).get(task, {}).get("metric_list") or [{}]
    return key.partition(",")[0] != metric_list[0].get("metric")


def _n_samples(out, task):
    if task in out.get("n-samples", {}):
        return int(out["n-samples"][task]["effective"])
    return sum(_n_samples(out, child) for child in out.get("group_subtasks", {}).get(task, []))


def rows_from_results(suite, runs, max_position_embeddings):
    """Tidy rows from lm-eval result dicts.

    runs: [(context_length or None, lm-eval results dict, the suite's task names in it)]; other
    entries of the results (subtasks of a group, say) are left out. lm-eval RULER tasks name their metrics by
    length ("4096"); those become rows with that context length and metric "score" (its negative
    placeholder for lengths not run is dropped). Per context length, a "<suite>_avg" row averages the
    primary metric (the first of the task's metric_list) of every task where it is higher-is-better.
    """
    rows = []
    for context_length, out, tasks in runs:
        for task in tasks:
            entry = out["results"].get(task)
            if entry is None:
                raise ValueError(f"lm-eval returned no result for task {task}")
            better = out.get("higher_is_better", {}).get(task, {})
            for key, value in sorted(entry.items(), key=lambda item: _primary_first(out, task, item[0])):
                metric, _, filter_name = key.partition(",")
                if not filter_name or "_stderr" in metric or _number(value) is None:
                    continue
                length = context_length
                if metric.isdigit():
                    if value < 0:
                        continue
                    length, name = int(metric), AVERAGE_METRIC
                else:
                    name = metric
                rows.append(
                    {
                        "suite": suite,
                        "task": task,
                        "metric": name,
                        "context_length": length,
                        "value": float(value),
                        "stderr": _number(entry.get(f"{metric}_stderr,{filter_name}")),
                        "stderr_method": out.get("stderr_method", {}).get(task, {}).get(metric),
                        "n_samples": _n_samples(out, task),
                        "higher_is_better": bool(better.get(metric, True)),
                        "beyond_max_position": length is not None and length > max_position_embeddings,
                    }
                )
    return rows + average_rows(suite, rows)


def average_rows(suite, rows):
    primary = {}
    for row in rows:  # the first metric a task reports at a length is its primary one
        primary.setdefault((row["context_length"], row["task"]), row)
    by_length = {}
    for (length, _), row in primary.items():
        if row["higher_is_better"]:
            by_length.setdefault(length, []).append(row)
    return [
        {
            "suite": suite,
            "task": f"{suite}_avg",
            "metric": AVERAGE_METRIC,
            "context_length": length,
            "value": sum(r["value"] for r in members) / len(members),
            "stderr": None,
            "stderr_method": None,
            "n_samples": sum(r["n_samples"] for r in members),
            "higher_is_better": True,
            "beyond_max_position": members[0]["beyond_max_position"],
        }
        for length, members in by_length.items()
    ]
