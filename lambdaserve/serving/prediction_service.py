"""The prediction use case: validated rows in, predictions out, one vectorized call per request."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from lambdaserve.core.encoding import Row, rows_to_columns
from lambdaserve.core.prediction_ids import new_prediction_ids
from lambdaserve.core.schema import MISSING_CATEGORY
from lambdaserve.serving.model_loader import LoadedModel


class PredictionObserver(Protocol):
    """Told about every scored request; the Lambda entry point turns this into EMF metrics."""

    def predicted(
        self, model: LoadedModel, *, rows: int, latency_ms: float, unseen: int
    ) -> None: ...


class PredictionService:
    """Scores rows; answers are plain dicts shaped like ``responses.Prediction``."""

    def __init__(self, model: LoadedModel, observer: PredictionObserver | None = None) -> None:
        self.model = model
        self.observer = observer
        manifest = model.bundle.manifest
        self._schema = manifest.features
        self._ref = {"name": manifest.name, "version": manifest.version}
        self._threshold = manifest.decision_threshold
        self._labels = (manifest.negative_class, manifest.positive_class)

    def _unseen(self, columns: dict[str, Any], n_rows: int) -> list[list[str]]:
        unseen: list[list[str]] = [[] for _ in range(n_rows)]
        for name, known in self.model.category_sets.items():
            for index, value in enumerate(columns[name].tolist()):
                if value != MISSING_CATEGORY and value not in known:
                    unseen[index].append(name)
        return unseen

    def predict(self, rows: Sequence[Row]) -> list[dict[str, Any]]:
        started = time.perf_counter()
        columns = rows_to_columns(self._schema, rows)
        probabilities = self.model.predictor.predict_proba(columns).tolist()
        unseen = self._unseen(columns, len(rows))
        threshold, labels, ref = self._threshold, self._labels, self._ref
        predictions = [
            {
                "prediction_id": prediction_id,
                "model": ref,
                "probability": probability,
                "label": labels[probability >= threshold],
                "unseen_categories": flagged,
            }
            for prediction_id, probability, flagged in zip(
                new_prediction_ids(len(rows)), probabilities, unseen, strict=True
            )
        ]
        if self.observer is not None:
            latency_ms = (time.perf_counter() - started) * 1000
            self.observer.predicted(
                self.model,
                rows=len(rows),
                latency_ms=latency_ms,
                unseen=sum(1 for flagged in unseen if flagged),
            )
        return predictions
