"""The prediction use case: validated rows in, predictions out, one vectorized call per request."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from lambdaserve.core.encoding import Row, rows_to_columns
from lambdaserve.core.prediction_ids import new_prediction_ids
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.responses import ModelRef, Prediction


class PredictionObserver(Protocol):
    """Told about every scored request; the Lambda entry point turns this into EMF metrics."""

    def predicted(
        self, model: LoadedModel, *, rows: int, latency_ms: float, unseen: int
    ) -> None: ...


class PredictionService:
    def __init__(self, model: LoadedModel, observer: PredictionObserver | None = None) -> None:
        self.model = model
        self.observer = observer
        manifest = model.bundle.manifest
        self._ref = ModelRef(name=manifest.name, version=manifest.version)
        self._threshold = manifest.decision_threshold
        self._labels = (manifest.negative_class, manifest.positive_class)

    def _unseen(self, row: Row) -> list[str]:
        return [
            name
            for name, known in self.model.category_sets.items()
            if row[name] is not None and row[name] not in known
        ]

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        started = time.perf_counter()
        schema = self.model.bundle.manifest.features
        probabilities = self.model.predictor.predict_proba(rows_to_columns(schema, rows))
        positive = probabilities >= self._threshold
        ids = new_prediction_ids(len(rows))
        predictions = [
            Prediction.model_construct(
                prediction_id=prediction_id,
                model=self._ref,
                probability=float(probability),
                label=self._labels[int(is_positive)],
                unseen_categories=self._unseen(row),
            )
            for prediction_id, probability, is_positive, row in zip(
                ids, probabilities.tolist(), positive.tolist(), rows, strict=True
            )
        ]
        if self.observer is not None:
            unseen = sum(1 for p in predictions if p.unseen_categories)
            latency_ms = (time.perf_counter() - started) * 1000
            self.observer.predicted(
                self.model, rows=len(rows), latency_ms=latency_ms, unseen=unseen
            )
        return predictions
