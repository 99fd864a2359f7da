"""Drift statistics: a window's histograms against the bundle's reference (DESIGN "Drift").

Small pure functions, each with golden-value tests:

- ``psi``: population stability index over the reference quantile bins (open-ended outer bins)
  plus the missing bin, ``sum((w - r) * ln(w / r))`` over bin proportions. Proportions are
  floored at ``PSI_EPSILON`` = 1e-4 (the value evidently and most PSI write-ups use for empty
  bins) so an empty bin costs a large but finite amount instead of infinity; bins empty on both
  sides contribute exactly 0. The floor is not renormalised.
- ``js_distance``: base-2 Jensen-Shannon distance (square root of the divergence, in [0, 1]) over
  the reference categories, one "unseen" bucket for categories the reference never saw (the
  reference has 0 there) and the missing bucket. No smoothing is needed: it is always finite.
- The model's output (``SCORE_FEATURE``): the score (binary probability, regression
  prediction) by PSI on the reference score bins, a multiclass predicted class by JS distance.

Each test is registered in ``STAT_TESTS`` with its kind, default threshold and direction. A window
(or reference) with fewer than ``min_samples`` rows gets the verdict ``insufficient_data`` and no
score, never a number that looks like a measurement.

Each feature also gets a chi-square p-value (``chi2_p_value``, same bins) for the false
discovery rate control over many features; that and the dataset-level verdicts drawn from the
results (the share rule, persistence over windows) are in ``drift.dataset_verdict``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, model_validator

# scipy ships no type stubs and pyproject has no mypy override for it.
from scipy import stats

from lambdaserve.drift.histograms import FeatureWindows, align_categories, aligned_bins, output_bins
from lambdaserve.drift.output_windows import OutputKind
from lambdaserve.kernel.reference import CategoricalReference, NumericReference, ReferenceProfile

PSI_EPSILON = 1e-4
#: Chi-square bins with fewer expected counts than this are pooled (Cochran's rule of thumb).
MIN_EXPECTED = 5.0
#: The ``feature`` name of the model output's result (score, prediction or predicted class).
SCORE_FEATURE = "__score__"

Verdict = Literal["drift", "no_drift", "insufficient_data"]
TestKind = Literal["numeric", "categorical", "score"]
Bins = Sequence[int]


def _proportions(
    reference: Bins, window: Bins
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    ref, win = np.asarray(reference, dtype=np.float64), np.asarray(window, dtype=np.float64)
    if ref.ndim != 1 or ref.shape != win.shape:
        raise ValueError(f"bins differ: {ref.shape} reference vs {win.shape} window")
    if (ref < 0).any() or (win < 0).any():
        raise ValueError("counts must be non-negative")
    if ref.sum() <= 0 or win.sum() <= 0:
        raise ValueError("both histograms need at least one count")
    return ref / ref.sum(), win / win.sum()


def psi_on_bins(reference: Bins, window: Bins, *, epsilon: float = PSI_EPSILON) -> float:
    """PSI of two count vectors on the same bins; proportions floored at ``epsilon``."""
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    ref, win = _proportions(reference, window)
    ref, win = np.maximum(ref, epsilon), np.maximum(win, epsilon)
    return float(np.sum((win - ref) * np.log(win / ref)))


def psi(
    reference_counts: Bins,
    reference_missing: int,
    window_counts: Bins,
    window_missing: int,
    *,
    epsilon: float = PSI_EPSILON,
) -> float:
    """PSI over the reference bins plus the missing bin as one more bin."""
    return psi_on_bins(
        [*reference_counts, reference_missing], [*window_counts, window_missing], epsilon=epsilon
    )


def _kl_bits(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> float:
    """Kullback-Leibler divergence in bits; 0 * log(0 / q) = 0, and q > 0 wherever p > 0 here."""
    present = p > 0
    return float(np.sum(p[present] * np.log2(p[present] / q[present])))


def js_distance_on_bins(reference: Bins, window: Bins) -> float:
    """Base-2 Jensen-Shannon distance of two count vectors on the same bins, in [0, 1]."""
    ref, win = _proportions(reference, window)
    mid = (ref + win) / 2
    divergence = (_kl_bits(ref, mid) + _kl_bits(win, mid)) / 2
    return float(np.sqrt(np.clip(divergence, 0.0, 1.0)))


def js_distance(
    reference: Mapping[str, int],
    reference_missing: int,
    window: Mapping[str, int],
    window_missing: int,
) -> float:
    """JS distance over reference categories, an unseen bucket and a missing bucket."""
    return js_distance_on_bins(
        *align_categories(reference, reference_missing, window, window_missing)
    )


def chi2_p_value(reference_counts: Bins, window_counts: Bins) -> float:
    """Two-sample chi-square test of homogeneity of the reference and the window, same bins.

    Both sides are finite samples: a goodness-of-fit test that took the reference proportions
    as exact gave far too small p-values for a reference of a few thousand rows (measured: an
    unshifted window flagged 9 of 14 features). Empty bins are dropped; bins whose smaller
    expected count is under ``MIN_EXPECTED`` are pooled, and a pool still too small joins the
    bin expecting least. With fewer than two bins, or an empty side, the p-value is 1.0.
    """
    table = np.vstack(
        [
            np.asarray(reference_counts, dtype=np.float64),
            np.asarray(window_counts, dtype=np.float64),
        ]
    )
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or (rows == 0).any():
        return 1.0
    expected = rows.min() * table.sum(axis=0) / table.sum()
    small = expected < MIN_EXPECTED
    if small.any():
        pooled = table[:, small].sum(axis=1, keepdims=True)
        kept, kept_expected = table[:, ~small], expected[~small]
        if kept.shape[1] and rows.min() * pooled.sum() / table.sum() < MIN_EXPECTED:
            least = int(np.argmin(kept_expected))
            kept = kept.copy()
            kept[:, least] += pooled[:, 0]
            table = kept
        else:
            table = np.hstack([kept, pooled])
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


@dataclass(frozen=True, kw_only=True)
class StatTest:
    """A registered drift test: ``fn`` maps (reference bins, window bins) to a score."""

    name: str
    kind: TestKind
    default_threshold: float
    higher_is_drift: bool = True
    fn: Callable[[Bins, Bins], float]

    def is_drift(self, score: float, threshold: float) -> bool:
        """A score exactly at the threshold counts as drift when higher is drift."""
        return score >= threshold if self.higher_is_drift else score < threshold


STAT_TESTS: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest(name="psi", kind="numeric", default_threshold=0.2, fn=psi_on_bins),
        StatTest(
            name="jensen_shannon", kind="categorical", default_threshold=0.1, fn=js_distance_on_bins
        ),
        StatTest(name="score_psi", kind="score", default_threshold=0.2, fn=psi_on_bins),
    )
}
DEFAULT_TESTS: dict[TestKind, str] = {
    "numeric": "psi",
    "categorical": "jensen_shannon",
    "score": "score_psi",
}
#: The model output's test: the score's, or (multiclass) the categorical features' one.
OUTPUT_TESTS: dict[OutputKind, str] = {"score": "score_psi", "predicted_class": "jensen_shannon"}


class DriftResult(BaseModel):
    """One feature's verdict, with every number it used."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature: str
    test: str
    score: float | None
    threshold: float
    verdict: Verdict
    reference_count: int
    window_count: int
    message: str
    p_value: float | None = None

    @model_validator(mode="after")
    def _score_iff_enough_data(self) -> Self:
        if (self.score is None) != (self.verdict == "insufficient_data"):
            raise ValueError("a score is given exactly when the data is sufficient")
        return self

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"

    @property
    def outcome(self) -> bool | None:
        """This result as a ``persistent_drift`` history entry."""
        return None if self.verdict == "insufficient_data" else self.drifted


def _judge(
    feature: str,
    test: StatTest,
    bins: tuple[list[int], list[int]],
    threshold: float,
    min_samples: int,
) -> DriftResult:
    ref_n, win_n = sum(bins[0]), sum(bins[1])
    score: float | None = None
    p_value: float | None = None
    verdict: Verdict = "insufficient_data"
    if min(ref_n, win_n) < min_samples:
        side, n = ("window", win_n) if win_n < min_samples else ("reference", ref_n)
        message = f"{side} has {n} samples, fewer than the minimum {min_samples}"
    else:
        score, p_value = test.fn(*bins), chi2_p_value(*bins)
        verdict = "drift" if test.is_drift(score, threshold) else "no_drift"
        relation = ">=" if score >= threshold else "<"
        message = f"{test.name} {score:.4f} {relation} threshold {threshold:g}"
    return DriftResult(
        feature=feature,
        test=test.name,
        score=score,
        threshold=threshold,
        verdict=verdict,
        reference_count=ref_n,
        window_count=win_n,
        message=message,
        p_value=p_value,
    )


def _kind(reference: NumericReference | CategoricalReference) -> TestKind:
    return "numeric" if isinstance(reference, NumericReference) else "categorical"


def _output_result(
    reference: ReferenceProfile,
    windows: FeatureWindows,
    thresholds: Mapping[str, float],
    min_samples: int,
) -> DriftResult:
    """The model output's result (``SCORE_FEATURE``), with the test of its kind."""
    output = output_bins(reference, windows)
    if output is None:
        raise ValueError("the window holds no histogram of the model's output")
    kind, ref_bins, win_bins = output
    test = STAT_TESTS[OUTPUT_TESTS[kind]]
    threshold = thresholds.get(test.name, test.default_threshold)
    return _judge(SCORE_FEATURE, test, (ref_bins, win_bins), threshold, min_samples)


def compare(
    reference: ReferenceProfile,
    windows: FeatureWindows,
    *,
    min_samples: int = 100,
    thresholds: Mapping[str, float] | None = None,
) -> list[DriftResult]:
    """Each feature (reference order) with its kind's test, then the model's output
    (``SCORE_FEATURE``) with its kind's.

    ``thresholds`` overrides default thresholds by test name, e.g. ``{"psi": 0.1}``.
    """
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1, got {min_samples}")
    overrides = dict(thresholds or {})
    if unknown := sorted(set(overrides) - set(STAT_TESTS)):
        raise ValueError(f"thresholds for unknown tests {unknown}; known: {sorted(STAT_TESTS)}")
    if set(reference.features) != set(windows.features):
        raise ValueError(
            f"window features {sorted(windows.features)} are not the reference's "
            f"{sorted(reference.features)}"
        )
    results = []
    for name, ref in reference.features.items():
        test = STAT_TESTS[DEFAULT_TESTS[_kind(ref)]]
        threshold = overrides.get(test.name, test.default_threshold)
        bins = aligned_bins(ref, windows.features[name])
        results.append(_judge(name, test, bins, threshold, min_samples))
    results.append(_output_result(reference, windows, overrides, min_samples))
    return results
