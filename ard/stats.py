"""The statistics of the summary: intervals over seeds, propagated intervals of ratios, paired
permutation tests over evaluation samples, and Holm's correction.

Intervals are 95 %. A figure of a variant trained with several seeds gets the t-interval over its seeds
(the restoration's own spread, for fixed evaluation samples); a figure with one seed the normal interval
of its standard error. Ratios (recovery, gap closed) get first-order (delta-method) intervals from the
standard errors of their parts, treated as independent: conservative, since variants are scored on the
same samples. Whether a restored variant beats a reference is tested on the samples themselves: a
one-sided paired sign-flip permutation test of the difference of the aggregate (the same aggregation lm-eval
uses), with each sample's score averaged over the variant's seeds.
"""
import math

import numpy as np
from scipy import stats as scipy_stats

Z95 = scipy_stats.norm.ppf(0.975)
PERMUTATIONS = 4000  # flips per batch, and the fewest a test draws
EXCEEDANCES = 20  # flips at least as good as the observed difference before a test stops early


def t_interval(values):
    """(mean, sd, low, high) of the 95 % t-interval over `values` (two or more)."""
    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(values.mean())
    sd = float(values.std(ddof=1))
    half = scipy_stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half


def normal_interval(value, stderr):
    if stderr is None or not math.isfinite(stderr):
        return math.nan, math.nan
    return value - Z95 * stderr, value + Z95 * stderr


def ratio_pct(value, reference, higher_is_better, se_value=math.nan, se_reference=math.nan):
    """(100 · value / reference, or its inverse for lower-is-better metrics; its standard error)."""
    (a, se_a), (b, se_b) = ((value, se_value), (reference, se_reference))[:: 1 if higher_is_better else -1]
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return math.nan, math.nan
    return 100.0 * a / b, 100.0 * math.hypot(se_a / b, a * se_b / b**2)


def gap_closed_pct(value, none, native, se_value=math.nan, se_none=math.nan, se_native=math.nan):
    """(100 · (value − none) / (native − none), its standard error, why it is empty or "").

    Empty when the gap native − none lies inside its own 95 % interval: dividing by a gap that may be
    zero turns noise into any percentage at all."""
    if not all(math.isfinite(x) for x in (value, none, native)):
        return math.nan, math.nan, "missing value"
    gap = native - none
    se_gap = math.hypot(se_native, se_none)
    if not math.isfinite(se_gap):
        return math.nan, math.nan, "the gap native − none has no interval (no stderr)"
    if abs(gap) <= Z95 * se_gap:
        return math.nan, math.nan, "the gap native − none is inside its 95 % interval"
    closed = (value - none) / gap
    se = math.sqrt(se_value**2 + ((closed - 1) * se_none) ** 2 + (closed * se_native) ** 2) / abs(gap)
    return 100.0 * closed, 100.0 * se, ""


def holm(pvalues):
    """Holm-adjusted p-values (same order; NaN stays NaN and is not counted)."""
    pvalues = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(pvalues, np.nan)
    present = np.flatnonzero(~np.isnan(pvalues))
    order = present[np.argsort(pvalues[present], kind="stable")]
    running, m = 0.0, len(order)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


# ---------------------------------------------------------------- per-sample aggregates


def _of_sums(name):
    """The aggregation as a function of (sum of scores, sum of weights, count): each one here is, so a
    permutation only moves sums between the two sides."""
    ln2 = math.log(2)
    return {
        "mean": lambda s, w, n: s / n,
        "bits_per_byte": lambda s, w, n: -s / w / ln2,
        "weighted_perplexity": lambda s, w, n: np.exp(-s / w),
        "perplexity": lambda s, w, n: np.exp(-s / n),
    }.get(name)


def _columns(items):
    """Per-sample items (numbers, or lm-eval's (loglikelihood, weight) pairs) as two float arrays."""
    array = np.asarray(items, dtype=float)
    if array.ndim == 1:
        return array, np.ones_like(array)
    return array[:, 0], array[:, 1]


def aggregate(name, items):
    """lm-eval's aggregation `name` of per-sample items; None for an aggregation not computed here."""
    function = _of_sums(name)
    if function is None:
        return None
    scores, weights = _columns(items)
    return float(function(scores.sum(), weights.sum(), len(scores)))


def mean_over_seeds(item_lists):
    """Per-sample items averaged over seeds (elementwise for pairs): one item per sample."""
    return np.mean(np.asarray(item_lists, dtype=float), axis=0).tolist()


def paired_pvalue(items, reference, name, higher_is_better, max_permutations=PERMUTATIONS, seed=0):
    """One-sided p-value that `items` aggregate better than `reference` (the same samples, in the same
    order), by flipping each sample's pair at random; NaN for an aggregation not computed here.

    Sequential (Besag and Clifford's Monte Carlo test): flips are drawn in batches until `EXCEEDANCES` of
    them score at least the observed difference (p = EXCEEDANCES / flips drawn) or `max_permutations`
    are drawn (p = (1 + exceedances) / (1 + flips)). A clear loser costs one batch; a clear winner can
    reach 1 / (1 + max_permutations), which a Holm correction over many tests needs."""
    function = _of_sums(name)
    if function is None or len(items) != len(reference) or not len(items):
        return math.nan
    (a, wa), (b, wb) = _columns(items), _columns(reference)
    count, sign = len(a), (1.0 if higher_is_better else -1.0)
    totals = np.array([a.sum(), wa.sum(), b.sum(), wb.sum()])

    def difference(sums):
        return sign * (function(sums[..., 0], sums[..., 1], count) - function(sums[..., 2], sums[..., 3], count))

    observed = difference(totals)
    # flipping sample i moves its score and weight difference from one side's sums to the other's
    moved = np.stack([b - a, wb - wa, a - b, wa - wb], axis=1)
    rng = np.random.default_rng(seed)
    row_bytes = (count + 7) // 8
    exceedances = drawn = 0
    while drawn < max_permutations:
        size = min(PERMUTATIONS, max_permutations - drawn)
        bits = np.frombuffer(rng.bytes(size * row_bytes), dtype=np.uint8).reshape(size, row_bytes)
        flips = np.unpackbits(bits, axis=1, count=count).astype(float)
        # ties count against "better": identical scores give p = 1
        hits = np.flatnonzero(difference(totals + flips @ moved) >= observed - 1e-12)
        if exceedances + len(hits) >= EXCEEDANCES:
            return EXCEEDANCES / (drawn + hits[EXCEEDANCES - exceedances - 1] + 1)
        exceedances += len(hits)
        drawn += size
    return (1 + exceedances) / (1 + drawn)


def permutations_for(tests, alpha, resolution=4):
    """The most flips a test may draw so that, Holm-corrected over `tests` tests, a sample that no flip
    beats is still significant at `alpha` (with `resolution`-fold room)."""
    return max(PERMUTATIONS, math.ceil(resolution * tests / alpha))
