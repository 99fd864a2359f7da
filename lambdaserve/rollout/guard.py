"""Guard signals of a rollout step: the challenger against the champion, from the same window.

The AWS backend reads CloudWatch alarm states; the local backend computes the same signals from
the local gateway's request log with ``evaluate_signals``. Either way a report names every
firing guard, and counts the challenger's requests for the minimum-sample rule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from lambdaserve.kernel.reference import SCORE_EDGES, bin_counts, quantile_edges
from lambdaserve.rollout.state import RolloutState

#: What a version's served outputs are: binary probabilities, regression predictions, or
#: multiclass classes.
OutputKind = Literal["probability", "prediction", "class"]


class GuardPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_error_rate: float = Field(default=0.02, ge=0.0, le=1.0, description="5XX share")
    max_invalid_rate_increase: float = Field(
        default=0.05, ge=0.0, le=1.0, description="challenger 4XX share minus champion's"
    )
    max_latency_ratio: float = Field(default=3.0, gt=1.0, description="p99 vs champion p99")
    min_latency_ms: float = Field(default=50.0, ge=0.0, description="p99 below this never fires")
    max_score_psi: float = Field(default=0.25, gt=0.0, description="score shift vs champion")
    # PSI between two samples of the SAME distribution is biased upward by about
    # (bins - 1) * (1/n_challenger + 1/n_champion): 0.18 at n=50 on 10 bins, a false alarm
    # waiting to happen; at 200 the bias is about 0.045.
    min_score_samples: int = Field(default=200, ge=1)
    max_class_js: float = Field(
        default=0.1, gt=0.0, le=1.0, description="multiclass: class-share JS distance vs champion"
    )


@dataclass
class VersionSignals:
    """What one function version did in the window."""

    requests: int = 0
    server_errors: int = 0
    invalid_inputs: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    score_kind: OutputKind = "probability"
    labels: list[str] = field(default_factory=list)

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms else 0.0


@dataclass(frozen=True)
class GuardReport:
    alarms: tuple[str, ...]
    challenger_samples: int
    details: dict[str, float] = field(default_factory=dict)


class GuardPort(Protocol):
    def evaluate(self, state: RolloutState, now: datetime) -> GuardReport: ...

    def release(self, state: RolloutState) -> None:
        """Remove what ``evaluate`` created for this rollout's challenger (the AWS guard's
        per-version alarms) once the rollout is finished. Idempotent: called again after a
        crash, it removes nothing twice and never touches guards it did not create."""
        ...


def score_psi(
    expected: list[float], actual: list[float], edges: tuple[float, ...] = SCORE_EDGES
) -> float:
    """Population stability index of two samples on ``edges`` (0.5 smoothing); by default the
    fixed probability bins of the drift baseline's score histogram."""
    e = np.asarray(bin_counts(np.asarray(expected, dtype=np.float64), edges)[0]) + 0.5
    a = np.asarray(bin_counts(np.asarray(actual, dtype=np.float64), edges)[0]) + 0.5
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def prediction_psi(expected: list[float], actual: list[float]) -> float:
    """PSI of regression predictions on the champion's decile edges (its own scale)."""
    return score_psi(expected, actual, quantile_edges(np.asarray(expected, dtype=np.float64)))


def class_share_js(expected: list[str], actual: list[str]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two samples' class shares."""
    classes = sorted(set(expected) | set(actual))
    counts_e, counts_a = Counter(expected), Counter(actual)
    e = np.array([counts_e[c] for c in classes], dtype=np.float64) / len(expected)
    a = np.array([counts_a[c] for c in classes], dtype=np.float64) / len(actual)
    middle = (e + a) / 2

    def kl(p: npt.NDArray[np.float64]) -> float:
        present = p > 0
        return float(np.sum(p[present] * np.log2(p[present] / middle[present])))

    return float(np.sqrt(max(0.0, (kl(e) + kl(a)) / 2)))


def _output_alarms(
    champion: VersionSignals, challenger: VersionSignals, policy: GuardPolicy
) -> tuple[list[str], dict[str, float]]:
    """The output distribution's guard, per task, once both arms have the minimum samples."""
    if min(len(challenger.labels), len(champion.labels)) >= policy.min_score_samples:
        js = class_share_js(champion.labels, challenger.labels)
        if js > policy.max_class_js:
            return [f"class shares JS distance {js:.2f} vs champion > {policy.max_class_js}"], {
                "class_js": js
            }
        return [], {"class_js": js}
    if min(len(challenger.scores), len(champion.scores)) < policy.min_score_samples:
        return [], {}
    if challenger.score_kind == "prediction":
        psi = prediction_psi(champion.scores, challenger.scores)
        what = "prediction distribution"
    else:
        psi = score_psi(champion.scores, challenger.scores)
        what = "score distribution"
    alarms = [f"{what} PSI {psi:.2f} vs champion > {policy.max_score_psi}"]
    return (alarms if psi > policy.max_score_psi else []), {"score_psi": psi}


def evaluate_signals(
    champion: VersionSignals, challenger: VersionSignals, policy: GuardPolicy
) -> GuardReport:
    alarms: list[str] = []
    details: dict[str, float] = {}
    if challenger.requests:
        error_rate = challenger.server_errors / challenger.requests
        invalid = challenger.invalid_inputs / challenger.requests
        base_invalid = champion.invalid_inputs / champion.requests if champion.requests else 0.0
        details |= {
            "error_rate": error_rate,
            "invalid_rate": invalid,
            "champion_invalid_rate": base_invalid,
        }
        if error_rate > policy.max_error_rate:
            alarms.append(f"5XX rate {error_rate:.1%} > {policy.max_error_rate:.1%}")
        if invalid - base_invalid > policy.max_invalid_rate_increase:
            alarms.append(
                f"invalid-input rate {invalid:.1%} vs champion {base_invalid:.1%} "
                f"(+{policy.max_invalid_rate_increase:.0%} allowed)"
            )
    if challenger.latencies_ms and champion.latencies_ms:
        p99, base = challenger.p99_ms, champion.p99_ms
        details |= {"p99_ms": p99, "champion_p99_ms": base}
        if p99 > policy.min_latency_ms and p99 > policy.max_latency_ratio * base:
            alarms.append(
                f"p99 latency {p99:.0f} ms > {policy.max_latency_ratio}x champion {base:.0f} ms"
            )
    output_alarms, output_details = _output_alarms(champion, challenger, policy)
    alarms += output_alarms
    details |= output_details
    return GuardReport(tuple(alarms), challenger.requests, details)
