"""Paired verdicts on the paper's claims, from the per-example test predictions of the records.

``compare(records, "isp", "oneshot", claim="beats", labels=labels)`` pairs the runs of two arms
(a ``label`` of :func:`isp_lib.records.tidy`: the method plus its settings) by seed on one test
set, and bootstraps the mean paired difference A - B (in points: percent, or the metric x 100).

The bootstrap has two levels. Each resample draws as many seeds as are shared, with
replacement; for each drawn seed it draws the test examples with replacement, the same example
indices for A and B of that seed, and recomputes both metrics on them; the statistic is the
mean over the drawn seeds of the per-seed difference. The interval is the percentile interval
of that statistic. For accuracy and Matthews correlation the example draw is a multinomial draw
of how often each observed (true class, A's class, B's class) combination is picked, which is
the same distribution as drawing indices, without an array per example. Without ``labels`` (or
for records that carry no predictions) only seeds are resampled, from the records'
``test_metric``; the :class:`Comparison` says which (``resampled``).

Verdicts, with ``lo, hi`` the interval and ``m >= 0`` the claim's margin (points):

- ``beats`` (A - B > m; m = 0 by default): *reproduced* if ``lo > m``, *contradicted* if
  ``hi < m``;
- ``at least`` (A - B >= -m, "A is at most m points worse than B"): *reproduced* if
  ``lo > -m``, *contradicted* if ``hi < -m``;
- ``matches`` (\\|A - B\\| < m, m > 0 required): *reproduced* if ``-m < lo`` and ``hi < m``,
  *contradicted* if ``hi < -m`` or ``lo > m``;
- *inconclusive* otherwise, and always with a single shared seed (its interval cannot show
  seed-to-seed variation);
- :data:`SMOKE_VERDICT` whenever every compared run is of the ``smoke`` profile (the table,
  interval and figure are still computed: they check the machinery);
- :data:`COLLAPSED_VERDICT` whenever every compared run of both arms predicts a single class
  (its ``test_confusion``): two majority-class classifiers agree whatever their weights, so
  their difference is no evidence about the methods.

Identical runs give the interval (0, 0): *inconclusive* for ``beats`` and ``at least`` with
m = 0, *reproduced* for ``matches``.

``detectable`` is the smallest effect (beyond the claim's threshold) that the data could have
detected: the interval's half-width times (z + 0.84) / z, z = 1.96 at 95%, i.e. the true
difference a two-sided test at the interval's level finds with 80% power, when the half-width
is z standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from isp_lib.predictions import decode_predictions, labels_sha256, predicted_classes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CLAIMS = ("beats", "at least", "matches")
#: The verdict of every claim on runs of the ``smoke`` profile: tiny random models check the
#: machinery, their differences are no evidence about the paper.
SMOKE_VERDICT = "— (smoke: machinery check, no verdict)"
#: The verdict of a claim whose runs all predict one class, in both arms (see the module's
#: docstring).
COLLAPSED_VERDICT = "no evidence (both arms predict one class)"
VERDICT_COLOURS = {"reproduced": "#1b7837", "contradicted": "#b2182b",
                   "inconclusive": "#777777", SMOKE_VERDICT: "#4a7ab7",
                   COLLAPSED_VERDICT: "#c9a227"}
_POWER_Z = NormalDist().inv_cdf(0.8)  # 80% power
_CLAIM_KEYS = ("a", "b", "claim", "margin", "sparsity", "wording")
_CHUNK = 4_000_000  # values per block of drawn example indices (regression)

Sparsity = float | tuple[float, float] | None


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of two arms on one claim (see the module's docstring).

    Attributes:
        a, b: the two arms' labels (``isp_lib.records.tidy``'s ``label``).
        sparsity: the target sparsity of both arms, or (A's, B's) where they differ.
        claim: ``"beats"``, ``"at least"`` or ``"matches"``.
        margin: the claim's margin in points.
        mean_diff: mean over the shared seeds of A - B, in points.
        ci_low, ci_high: the bootstrap interval of ``mean_diff``.
        seeds: how many seeds the two arms share.
        verdict: ``"reproduced"``, ``"contradicted"``, ``"inconclusive"`` or
            :data:`SMOKE_VERDICT` (runs of the smoke profile).
        detectable: the smallest effect the data could have detected (80% power), points.
        wording: the claim as the paper words it.
        metric: the records' ``metric_name``.
        resampled: ``"seeds and test examples"`` or ``"seeds"``.
        level: the interval's coverage.
    """

    a: str
    b: str
    sparsity: Sparsity
    claim: str
    margin: float
    mean_diff: float
    ci_low: float
    ci_high: float
    seeds: int
    verdict: str
    detectable: float
    wording: str
    metric: str
    resampled: str
    level: float

    def sentence(self) -> str:
        """One sentence, e.g. "isp − oneshot at 70% = +1.12 points [+0.40, +1.85], 5 seeds:
        reproduced (claim: ISP beats one-shot)"."""
        seeds = f"{self.seeds} seed{'s' if self.seeds != 1 else ''}"
        if self.resampled == "seeds":
            seeds += " (seeds resampled only)"
        power = f", could detect {self.detectable:.2f}" if self.verdict == "inconclusive" else ""
        return (f"{self.a} − {self.b}{at_sparsity(self.sparsity)} = {self.mean_diff:+.2f} points "
                f"[{self.ci_low:+.2f}, {self.ci_high:+.2f}], {seeds}: {self.verdict}{power} "
                f"(claim: {self.wording})")

    def __str__(self) -> str:
        return self.sentence()


TABLE_COLUMNS = tuple(f.name for f in fields(Comparison))


def at_sparsity(sparsity: object) -> str:
    """" at 70%", " at 50% vs 70%" (A's, B's), or "" where the claim keeps every run.

    >>> at_sparsity(0.7), at_sparsity((0.5, 0.7)), at_sparsity(None)
    (' at 70%', ' at 50% vs 70%', '')
    """
    if isinstance(sparsity, tuple):
        return " at " + " vs ".join(f"{s:.0%}" for s in sparsity)
    if sparsity is None or (isinstance(sparsity, float) and math.isnan(sparsity)):
        return ""
    return f" at {sparsity:.0%}"


def run_label(record: dict) -> str:
    """The arm of a result record: its method, with its settings in brackets if any.

    The same as the ``label`` column of :func:`isp_lib.records.tidy` (which imports torch).

    >>> run_label({"method": "isp", "config": {"overrides": [["fit_rate", "true"]]}})
    'isp (fit_rate=true)'
    """
    settings = " ".join(f"{k}={v}" for k, v in record["config"]["overrides"])
    return f"{record['method']} ({settings})" if settings else record["method"]


def compare(records: Sequence[dict], a: str, b: str, claim: str = "beats", margin: float = 0.0,
            *, labels: np.ndarray | None = None, sparsity: Sparsity = None,
            wording: str | None = None, resamples: int = 2000, level: float = 0.95,
            seed: int = 0) -> Comparison:
    """The verdict on a claim "A beats B" / "A is at least B" / "A matches B", paired by seed.

    Args:
        records: result records (as written by ``isp run``); several arms and sparsities.
        a, b: the two arms, as :func:`run_label` (``tidy``'s ``label``) names them.
        claim: ``"beats"``, ``"at least"`` or ``"matches"``.
        margin: points; "beats by more than m", "at least, within m", "matches within m"
            (required > 0 for ``"matches"``).
        labels: the test labels in order (:func:`test_labels`); with them, test examples are
            resampled too (classification: accuracy or Matthews; regression: Pearson).
            Without them only seeds are, from ``test_metric``.
        sparsity: keep runs of this target sparsity; a pair gives A's and B's (e.g.
            ``(0.7, 0.0)`` against dense); None keeps all (one run per seed and arm).
        wording: the paper's claim; by default "A beats B" etc.
        resamples: bootstrap resamples.
        level: the interval's coverage.
        seed: seed of the bootstrap's ``numpy.random.default_rng``.

    Returns:
        The :class:`Comparison`.

    Raises:
        ValueError: an unknown claim or a bad margin; an arm with no run, or with two runs of
            one seed; no shared seed; runs on different test sets or metrics; ``labels`` of
            another test set, or records without predictions when ``labels`` are given; a
            ``level`` outside (0, 1) or no resample.
    """
    if claim not in CLAIMS:
        raise ValueError(f"claim {claim!r} is not one of {', '.join(CLAIMS)}")
    if margin < 0 or (claim == "matches" and margin <= 0):
        raise ValueError(f"margin {margin} must be >= 0, and > 0 for 'matches'")
    if not 0 < level < 1 or resamples < 1:
        raise ValueError(f"level {level} must lie in (0, 1) and resamples {resamples} be >= 1")
    sa, sb = sparsity if isinstance(sparsity, tuple) else (sparsity, sparsity)
    arm_a, arm_b = _arm(records, a, sa), _arm(records, b, sb)
    shared = sorted(set(arm_a) & set(arm_b))
    if not shared:
        raise ValueError(f"{a!r} (seeds {sorted(arm_a)}) and {b!r} (seeds {sorted(arm_b)}) "
                         "share no seed: run both arms with the same seeds")
    pairs = [(arm_a[s], arm_b[s]) for s in shared]
    runs = [r for pair in pairs for r in pair]
    hashes = {r.get("test_labels_sha256") for r in runs}
    if len(hashes - {None}) > 1:
        raise ValueError(f"{a!r} and {b!r} were tested on different test sets "
                         f"(test_labels_sha256 {', '.join(sorted(hashes - {None}))}): "
                         "compare runs of one data set, profile and data source")
    metrics = {r["metric_name"] for r in runs}
    if len(metrics) > 1:
        raise ValueError(f"{a!r} and {b!r} report different metrics ({', '.join(metrics)})")
    metric = metrics.pop()
    rng = np.random.default_rng(seed)
    k = len(shared)
    if labels is None:
        per_seed = np.array([ra["test_metric"] - rb["test_metric"] for ra, rb in pairs],
                            dtype=np.float64)
        boot = per_seed[rng.integers(0, k, size=(resamples, k))].mean(axis=1)
        resampled = "seeds"
    else:
        gold = np.asarray(labels).reshape(-1)
        if any(r.get("test_predictions") is None for r in runs):
            raise ValueError(f"some runs of {a!r} or {b!r} carry no test predictions (older "
                             "records): re-run them, or pass labels=None")
        if hashes != {labels_sha256(gold)}:
            raise ValueError(f"labels (sha256 {labels_sha256(gold)}) are not the test set of "
                             f"{a!r} and {b!r} ({', '.join(map(str, hashes))}): load them with "
                             "test_labels(data, profile, records), or pass labels=None")
        found = [_per_seed(metric, gold, decode_predictions(ra["test_predictions"]),
                           decode_predictions(rb["test_predictions"])) for ra, rb in pairs]
        per_seed = np.array([observed for observed, _ in found])
        boot = _two_level(rng, [draw for _, draw in found], resamples)
        resampled = "seeds and test examples"
    lo, hi = (float(v) for v in np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]))
    z = NormalDist().inv_cdf((1 + level) / 2)
    found_a, found_b = (_one_sparsity(arm, shared) for arm in (arm_a, arm_b))
    return Comparison(
        a=a, b=b, sparsity=found_a if found_a == found_b else (found_a, found_b),
        claim=claim, margin=float(margin), mean_diff=float(per_seed.mean()), ci_low=lo,
        ci_high=hi, seeds=k,
        verdict=SMOKE_VERDICT if all(r["config"].get("profile") == "smoke" for r in runs)
        else COLLAPSED_VERDICT if all(_collapsed(r) for r in runs)
        else _verdict(claim, float(margin), lo, hi, k),
        detectable=(hi - lo) / 2 * (z + _POWER_Z) / z,
        wording=wording or claim_wording(a, b, claim, float(margin)), metric=metric,
        resampled=resampled, level=level)


def compare_table(records: Sequence[dict], claims: Sequence[Sequence[Any] | Mapping[str, Any]],
                  labels: np.ndarray | None = None, *, resamples: int = 2000,
                  level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Evaluate several claims with :func:`compare` into one table.

    Args:
        records: result records.
        claims: each ``(a, b, claim, margin)``, optionally followed by ``sparsity`` and
            ``wording``; or a mapping of :func:`compare`'s keyword arguments (``a``, ``b``,
            ``claim``, ..., even ``labels``).
        labels: the test labels, for every claim that does not set its own.
        resamples, level, seed: as in :func:`compare`, for every claim.

    Returns:
        One row per claim, in order, with the columns :data:`TABLE_COLUMNS` (``a``, ``b``,
        ``sparsity``, ``claim``, ``margin``, ``mean_diff``, ``ci_low``, ``ci_high``,
        ``seeds``, ``verdict``, ``detectable``, ``wording``, ``metric``, ``resampled``,
        ``level``).
    """
    rows = []
    for spec in claims:
        if isinstance(spec, Mapping):
            kwargs = dict(spec)
        elif 4 <= len(spec) <= len(_CLAIM_KEYS):
            kwargs = dict(zip(_CLAIM_KEYS, spec, strict=False))
        else:
            raise ValueError(f"claim {spec!r}: expected (a, b, claim, margin[, sparsity"
                             "[, wording]]) or a mapping of compare's arguments")
        options = {"labels": labels, "resamples": resamples, "level": level, "seed": seed}
        rows.append(astuple(compare(records, **{**options, **kwargs})))
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def plot_comparisons(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """One row per claim of a :func:`compare_table`: the mean difference and its interval.

    Points are coloured by verdict; a vertical line marks 0, a band marks (-m, m) for a
    ``matches`` claim and a tick marks the threshold of a ``beats`` / ``at least`` claim with a
    margin.

    Args:
        table: a :func:`compare_table`.
        ax: axes to draw on; a new figure sized for a page's width by default.

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 1.0 + 0.45 * len(table)), layout="constrained")
    ys = np.arange(len(table))[::-1]
    for y, row in zip(ys, table.itertuples(index=False), strict=True):
        m = row.margin
        if row.claim == "matches":
            ax.fill_betweenx([y - 0.35, y + 0.35], -m, m, color="#d9d9d9", lw=0, zorder=0)
        elif m > 0:
            threshold = m if row.claim == "beats" else -m
            ax.plot([threshold] * 2, [y - 0.35, y + 0.35], color="#444444", lw=1.5, zorder=1)
        colour = VERDICT_COLOURS[row.verdict]
        ax.errorbar(row.mean_diff, y, xerr=[[row.mean_diff - row.ci_low],
                                           [row.ci_high - row.mean_diff]],
                    fmt="o", color=colour, ecolor=colour, capsize=4, ms=6, lw=2, zorder=2)
    ax.axvline(0.0, color="black", lw=0.8, zorder=1)
    ax.set_yticks(ys, [_row_name(row) for row in table.itertuples(index=False)])
    ax.set_ylim(-0.7, len(table) - 0.3)
    metrics = ", ".join(sorted(set(table["metric"])))
    levels = ", ".join(f"{v:.0%}" for v in sorted(set(table["level"])))
    ax.set_xlabel(f"A − B ({metrics}, points; {levels} intervals)")
    handles = [Line2D([], [], marker="o", ls="", color=c, label=v)
               for v, c in VERDICT_COLOURS.items() if v in set(table["verdict"])]
    if handles:
        ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0),
                  ncol=len(handles), fontsize="small", frameon=False)
    ax.margins(x=0.06)
    ax.grid(axis="x", alpha=0.3)
    return ax


def test_labels(data: str, profile: str, records: Sequence[dict] = (),
                source: str | None = None) -> np.ndarray:
    """The test labels of a data set, in test order, as its runs saw them.

    Args:
        data: data set name, e.g. ``"drugreview"``.
        profile: profile name (its caps shape the test split).
        records: records to check the labels against (those of ``data`` that carry a
            ``test_labels_sha256``); their data override is the default ``source``.
        source: the runs' data override (``config.data_source``).

    Returns:
        The labels (int64 classes, float32 regression targets).

    Raises:
        ValueError: a record of ``data`` was tested on other labels.
    """
    from isp_lib.data import load_data
    from isp_lib.profiles import get_profile

    mine = [r for r in records if r.get("data") == data]
    if source is None:
        sources = {r.get("config", {}).get("data_source") for r in mine}
        source = sources.pop() if len(sources) == 1 else None
    labels = np.asarray(load_data(data, get_profile(profile), source=source).test.labels)
    digest = labels_sha256(labels)
    others = sorted({r["test_labels_sha256"] for r in mine
                     if r.get("test_labels_sha256") not in (None, digest)})
    if others:
        raise ValueError(f"{data} under profile {profile} (source {source}) has test labels "
                         f"{digest}, but records have {', '.join(others)}: pass the runs' "
                         "profile and data source")
    return labels


test_labels.__test__ = False  # not a pytest test when a test module imports it


def _arm(records: Sequence[dict], label: str, sparsity: float | None) -> dict[int, dict]:
    """The runs of one arm, by seed."""
    runs = [r for r in records if run_label(r) == label and
            (sparsity is None or math.isclose(r["target_sparsity"], sparsity, abs_tol=1e-9))]
    where = f" at sparsity {sparsity}" if sparsity is not None else ""
    if not runs:
        known = ", ".join(sorted({run_label(r) for r in records}))
        raise ValueError(f"no run of {label!r}{where}; the records hold {known}")
    by_seed: dict[int, dict] = {}
    for r in runs:
        if r["seed"] in by_seed:
            raise ValueError(f"{label!r}{where} has several runs of seed {r['seed']} (another "
                             "sparsity, model or data set?): pass sparsity, or filter records")
        by_seed[r["seed"]] = r
    return by_seed


def _one_sparsity(arm: dict[int, dict], seeds: list[int]) -> float | None:
    found = {float(arm[s]["target_sparsity"]) for s in seeds}
    return found.pop() if len(found) == 1 else None


def _collapsed(record: dict) -> bool:
    conf = record.get("test_confusion")
    return bool(conf) and predicted_classes(conf) == 1


def _verdict(claim: str, margin: float, lo: float, hi: float, seeds: int) -> str:
    if seeds < 2:
        return "inconclusive"
    if claim == "matches":
        if -margin < lo and hi < margin:
            return "reproduced"
        if hi < -margin or lo > margin:
            return "contradicted"
        return "inconclusive"
    threshold = margin if claim == "beats" else -margin
    if lo > threshold:
        return "reproduced"
    if hi < threshold:
        return "contradicted"
    return "inconclusive"


def claim_wording(a: str, b: str, claim: str, margin: float) -> str:
    """A claim in words, as verdict sentences quote it.

    >>> claim_wording("isp", "imp", "at least", 0.5)
    'isp is at least as good as imp within 0.5 points'
    """
    if claim == "beats":
        return f"{a} beats {b}" + (f" by more than {margin:g} points" if margin else "")
    if claim == "at least":
        return f"{a} is at least as good as {b}" + (f" within {margin:g} points" if margin else "")
    return f"{a} matches {b} within {margin:g} points"


def _row_name(row: Any) -> str:
    s = row.sparsity
    if isinstance(s, tuple):
        at = f" ({s[0]:.0%} vs {s[1]:.0%})"
    else:
        at = "" if s is None or (isinstance(s, float) and math.isnan(s)) else f" ({s:.0%})"
    return f"{row.wording}{at}"


# --- per seed: the observed A - B, and a function that draws it on resampled test examples ---

Draw = Callable[[np.random.Generator, int], np.ndarray]


def _two_level(rng: np.random.Generator, draws: list[Draw], resamples: int) -> np.ndarray:
    """Mean over drawn seeds of the per-seed difference on drawn examples, per resample."""
    k = len(draws)
    drawn = rng.integers(0, k, size=(resamples, k))
    diffs = np.empty((resamples, k))
    for i, draw in enumerate(draws):
        where = drawn == i
        diffs[where] = draw(rng, int(where.sum()))
    return diffs.mean(axis=1)


def _per_seed(metric: str, gold: np.ndarray, pa: np.ndarray, pb: np.ndarray
              ) -> tuple[float, Draw]:
    """The observed difference A - B (points) of one seed, and its resampler."""
    n = gold.size
    if pa.size != n or pb.size != n:
        raise ValueError(f"predictions of {pa.size} and {pb.size} examples for {n} labels")
    if metric == "pearson":
        return _pearson(gold, pa, pb)
    if metric == "accuracy":
        # Only how many drawn examples A alone and B alone got right matters.
        ca, cb = pa == gold, pb == gold
        freq = np.array([np.sum(ca & ~cb), np.sum(~ca & cb), np.sum(ca == cb)], dtype=np.float64)

        def stat(counts: np.ndarray) -> np.ndarray:
            return 100.0 * (counts[:, 0] - counts[:, 1]) / n
    elif metric == "matthews":
        cells, seen = np.unique(np.stack([gold, pa, pb], axis=1), axis=0, return_counts=True)
        freq = seen.astype(np.float64)
        classes = np.unique(cells)
        hot = [(cells[:, j, None] == classes[None, :]).astype(np.float64) for j in range(3)]
        right = [(cells[:, 0] == cells[:, j]).astype(np.float64) for j in (1, 2)]

        def stat(counts: np.ndarray) -> np.ndarray:
            return 100.0 * (_mcc(counts, hot[0], hot[1], right[0], n)
                            - _mcc(counts, hot[0], hot[2], right[1], n))
    else:
        raise ValueError(f"no paired bootstrap for metric {metric!r}")

    def draw(rng: np.random.Generator, m: int) -> np.ndarray:
        return stat(rng.multinomial(n, freq / n, size=m).astype(np.float64))

    return float(stat(freq[None])[0]), draw


def _mcc(counts: np.ndarray, true_hot: np.ndarray, pred_hot: np.ndarray, right: np.ndarray,
         n: int) -> np.ndarray:
    """Matthews correlation (multi-class, as ``isp_lib.train``) per row of cell counts."""
    t, p, c = counts @ true_hot, counts @ pred_hot, counts @ right
    denom = np.sqrt((n * n - (p * p).sum(1)) * (n * n - (t * t).sum(1)))
    num = c * n - (t * p).sum(1)
    return np.divide(num, denom, out=np.zeros_like(num), where=denom > 0)


def _pearson(gold: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> tuple[float, Draw]:
    """Pearson correlation (as ``isp_lib.train``) on drawn examples, from weighted sums."""
    y, xa, xb = (v.astype(np.float64) - v.astype(np.float64).mean() for v in (gold, pa, pb))
    n = y.size
    columns = np.stack([y, y * y, xa, xa * xa, xa * y, xb, xb * xb, xb * y], axis=1)

    def diff(counts: np.ndarray) -> np.ndarray:
        sy, syy, *arms = (counts @ columns).T
        vy = n * syy - sy * sy
        out = []
        for sx, sxx, sxy in (arms[:3], arms[3:]):
            denom = np.sqrt(np.clip((n * sxx - sx * sx) * vy, 0.0, None))
            num = n * sxy - sx * sy
            out.append(np.divide(num, denom, out=np.zeros_like(num), where=denom > 0))
        return 100.0 * (out[0] - out[1])

    def draw(rng: np.random.Generator, m: int) -> np.ndarray:
        step = max(1, _CHUNK // n)
        parts = [np.empty(0)]
        for start in range(0, m, step):
            rows = min(step, m - start)
            idx = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
            counts = np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n)
            parts.append(diff(counts.astype(np.float64)))
        return np.concatenate(parts)

    return float(diff(np.ones((1, n)))[0]), draw
