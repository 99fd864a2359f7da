"""Verdicts over many per-feature results (DESIGN "Drift"): the dataset's, the features' under
false discovery rate control, and persistence over windows.

Many features at once: PSI and JS distance have no p-values, so the false alarms of testing many
features are controlled explicitly in two ways. ``dataset_drift`` declares the dataset drifted
only if at least ``share`` (default 0.5, evidently's) of the tested features drift, so a handful
of per-feature false alarms cannot raise a dataset alarm. ``fdr_drifted`` names the features whose
chi-square goodness-of-fit p-value (``chi2_p_value``, same bins, expected counts from the
reference proportions) survives Benjamini-Hochberg at false discovery rate ``alpha``. With large
windows the chi-square test flags even tiny shifts; the distance thresholds judge magnitude.

``persistent_drift`` is the "drifted in k of the last n windows" rule for alarms.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from lambdaserve.drift.statistics import SCORE_FEATURE, DriftResult, Verdict


def benjamini_hochberg(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Which hypotheses to reject at false discovery rate ``alpha`` (step-up), in input order."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    p = np.asarray(p_values, dtype=np.float64)
    if ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise ValueError(f"p-values must be in [0, 1], got {list(p_values)}")
    m = p.size
    order = np.argsort(p, kind="stable")
    passes = p[order] <= alpha * np.arange(1, m + 1) / m
    reject = np.zeros(m, dtype=bool)
    if passes.any():
        reject[order[: int(np.nonzero(passes)[0].max()) + 1]] = True
    return [bool(r) for r in reject]


def persistent_drift(history: Sequence[bool | None], k: int, n: int) -> bool:
    """Drifted in at least ``k`` of the last ``n`` windows (oldest first; None = no data)."""
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    return sum(1 for drifted in history[-n:] if drifted is True) >= k


class DatasetDrift(BaseModel):
    """The dataset-level verdict of the share rule, and which features it counted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict
    share: float
    tested: int
    drifted_features: tuple[str, ...]


def dataset_drift(results: Sequence[DriftResult], *, share: float = 0.5) -> DatasetDrift:
    """Drift if at least ``share`` of the features with enough data drift (score excluded)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    tested = [r for r in results if r.feature != SCORE_FEATURE and r.outcome is not None]
    drifted = tuple(r.feature for r in tested if r.drifted)
    verdict: Verdict = "insufficient_data"
    if tested:
        verdict = "drift" if len(drifted) >= share * len(tested) else "no_drift"
    return DatasetDrift(verdict=verdict, share=share, tested=len(tested), drifted_features=drifted)


def fdr_drifted(results: Sequence[DriftResult], *, alpha: float = 0.05) -> tuple[str, ...]:
    """Features whose chi-square p-value survives Benjamini-Hochberg at FDR ``alpha``."""
    tested = [r for r in results if r.feature != SCORE_FEATURE and r.p_value is not None]
    rejected = benjamini_hochberg([r.p_value for r in tested if r.p_value is not None], alpha)
    return tuple(r.feature for r, reject in zip(tested, rejected, strict=True) if reject)
