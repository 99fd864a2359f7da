"""The predict function's prediction observer: counts, mean score, latency and unseen categories
as EMF metrics (the rollout guard's signals), per executed version."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdaserve.kernel.metric_names import PredictMetric
from lambdaserve.serving.model_loader import LoadedModel


class EmfObserver:
    """Prediction counts and model latency as CloudWatch EMF metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def predicted(
        self,
        model: LoadedModel,
        *,
        rows: int,
        latency_ms: float,
        unseen: int,
        mean_score: float,
    ) -> None:
        self.metrics.add_metric(name=PredictMetric.PREDICTIONS, unit=MetricUnit.Count, value=rows)
        # The rollout guard compares the challenger's mean score with the champion's.
        self.metrics.add_metric(
            name=PredictMetric.MEAN_SCORE, unit=MetricUnit.NoUnit, value=mean_score
        )
        self.metrics.add_metric(
            name=PredictMetric.MODEL_LATENCY, unit=MetricUnit.Milliseconds, value=latency_ms
        )
        self.metrics.add_metric(
            name=PredictMetric.UNSEEN_CATEGORY_ROWS, unit=MetricUnit.Count, value=unseen
        )

    def capture_failed(self, model: LoadedModel, *, records: int) -> None:
        self.metrics.add_metric(
            name=PredictMetric.CAPTURE_ERRORS, unit=MetricUnit.Count, value=records
        )
