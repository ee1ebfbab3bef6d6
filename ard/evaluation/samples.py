"""Per-sample scores from lm-eval (`log_samples`) and the standard errors lm-eval leaves out.

lm-eval gives no standard error for corpus-level aggregations such as bits_per_byte and word or byte
perplexity (ratios over all documents). From the per-document items it logs, the delete-one jackknife
estimates the standard error of lm-eval's own aggregation function: sqrt((n−1)/n · Σ (θ₋ᵢ − θ̄)²), which
for a plain mean equals the textbook s/√n.
"""
import math

LM_EVAL = "lm_eval"
JACKKNIFE = "jackknife"


def _plain(value):
    """A JSON-safe copy of one per-sample metric value (lm-eval's tuples become lists)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return float(value)


def compact(samples):
    """{task: [{"doc_id", "filter", <metric>: value, ...}]}: lm-eval's logged samples without the documents,
    prompts and responses, ordered by doc_id (the sample's index in the task's data file)."""
    out = {}
    for task, entries in samples.items():
        rows = [
            {"doc_id": entry["doc_id"], "filter": entry["filter"], **{m: _plain(entry[m]) for m in entry["metrics"]}}
            for entry in entries
        ]
        out[task] = sorted(rows, key=lambda row: (row["filter"], row["doc_id"]))
    return out


def aggregation(out, task, metric):
    """lm-eval's aggregation function of one task metric: the task config's, else the metric's default."""
    from lm_eval.api.registry import get_aggregation, get_metric_aggregation

    for entry in out.get("configs", {}).get(task, {}).get("metric_list") or []:
        if entry.get("metric") == metric and isinstance(entry.get("aggregation"), str):
            return get_aggregation(entry["aggregation"])
    return get_metric_aggregation(metric)


def jackknife_stderr(aggregate, items):
    """Delete-one jackknife standard error of aggregate(items); None with fewer than two items."""
    n = len(items)
    if n < 2:
        return None
    estimates = [aggregate(items[:i] + items[i + 1 :]) for i in range(n)]
    mean = sum(estimates) / n
    return math.sqrt((n - 1) / n * sum((e - mean) ** 2 for e in estimates))


def fill_missing_stderr(out, samples):
    """Write a jackknife stderr into `out["results"]` wherever lm-eval left "N/A" and the samples allow one.

    Returns {task: {metric: "lm_eval" | "jackknife"}} for every metric that ends with a stderr.
    """
    methods = {}
    for task, rows in samples.items():
        entry = out["results"].get(task, {})
        for key in list(entry):
            metric, _, filter_name = key.partition(",")
            if not filter_name or metric.endswith("_stderr"):
                continue
            stderr_key = f"{metric}_stderr,{filter_name}"
            if isinstance(entry.get(stderr_key), (int, float)):
                methods.setdefault(task, {})[metric] = LM_EVAL
                continue
            items = [row[metric] for row in rows if row["filter"] == filter_name and metric in row]
            function = aggregation(out, task, metric) if items else None
            stderr = jackknife_stderr(function, items) if function else None
            if stderr is not None:
                entry[stderr_key] = stderr
                methods.setdefault(task, {})[metric] = JACKKNIFE
    return methods
