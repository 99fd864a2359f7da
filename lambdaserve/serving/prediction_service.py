"""The prediction use case: validated rows in, predictions out, one vectorized call per request.

With a capture sink, every scored row also becomes one ``CaptureRecord`` (features after the
capture policy's masking and hashing) handed to the sink before the answer leaves. Capture never
fails a request: a sink or record error is logged and counted (``capture_errors``, and the
observer's ``capture_failed``), and the prediction is answered as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import numpy as np

from lambdaserve.core.capture import CapturePolicy, CaptureRecord, CaptureSink, FeatureValue
from lambdaserve.core.encoding import Row, rows_to_columns
from lambdaserve.core.errors import CapturePolicyError, NonFiniteScoreError
from lambdaserve.core.feedback_tokens import FeedbackSigner
from lambdaserve.core.prediction_ids import new_prediction_ids
from lambdaserve.core.schema import MISSING_CATEGORY
from lambdaserve.local.capture_log import CaptureBatch
from lambdaserve.serving.model_loader import LoadedModel

log = logging.getLogger(__name__)


class PredictionObserver(Protocol):
    """Told about every scored request; the Lambda entry point turns this into EMF metrics."""

    def predicted(
        self,
        model: LoadedModel,
        *,
        rows: int,
        latency_ms: float,
        unseen: int,
        mean_score: float,
    ) -> None: ...

    def capture_failed(self, model: LoadedModel, *, records: int) -> None: ...


class PredictionService:
    """Scores rows; answers are plain dicts shaped like ``responses.Prediction``."""

    def __init__(
        self,
        model: LoadedModel,
        observer: PredictionObserver | None = None,
        *,
        capture: CaptureSink | None = None,
        capture_policy: CapturePolicy | None = None,
        function_version: str | None = None,
        feedback_signer: FeedbackSigner | None = None,
    ) -> None:
        self.model = model
        #: Signs each answered prediction id; ``POST /feedback`` checks the token it returns.
        self.feedback_signer = feedback_signer or FeedbackSigner.ephemeral()
        self.observer = observer
        manifest = model.bundle.manifest
        self._schema = manifest.features
        self._ref = {"name": manifest.name, "version": manifest.version}
        self._threshold = manifest.decision_threshold
        self._labels = (manifest.negative_class, manifest.positive_class)
        self.capture_policy = capture_policy or CapturePolicy()
        self.capture = capture if self.capture_policy.enabled else None
        self.capture_errors = 0
        self._policy_alters = bool(self.capture_policy.altered)
        self.function_version = function_version
        problem = self.capture_policy.unknown_fields(self._schema.names)
        if self.capture is not None and problem is not None:
            raise CapturePolicyError(problem)

    def _unseen(self, columns: dict[str, Any], n_rows: int) -> list[list[str]]:
        unseen: list[list[str]] = [[] for _ in range(n_rows)]
        for name, known in self.model.category_sets.items():
            for index, value in enumerate(columns[name].tolist()):
                if value != MISSING_CATEGORY and value not in known:
                    unseen[index].append(name)
        return unseen

    def predict(
        self, rows: Sequence[Row], *, received_at: float | None = None
    ) -> list[dict[str, Any]]:
        """Score ``rows``; ``received_at`` (a ``time.perf_counter()`` reading taken when the
        request arrived) makes the captured latency cover reading and validating the body too."""
        started = time.perf_counter()
        columns = rows_to_columns(self._schema, rows)
        scores = self.model.predictor.predict_proba(columns)
        if not np.isfinite(scores).all():
            # Never answered (NaN is not JSON) nor captured (it poisons the A/B report).
            raise NonFiniteScoreError(
                f"the model produced no finite score for {int((~np.isfinite(scores)).sum())} of "
                f"{len(rows)} row(s); nothing was answered or captured (extreme numeric values?)"
            )
        probabilities = scores.tolist()
        unseen = self._unseen(columns, len(rows))
        threshold, labels, ref = self._threshold, self._labels, self._ref
        ids = new_prediction_ids(len(rows))
        predictions = [
            {
                "prediction_id": prediction_id,
                "model": ref,
                "probability": probability,
                "label": labels[probability >= threshold],
                "unseen_categories": flagged,
                "feedback_token": token,
            }
            for prediction_id, probability, flagged, token in zip(
                ids,
                probabilities,
                unseen,
                self.feedback_signer.tokens(self.model.name, ids),
                strict=True,
            )
        ]
        finished = time.perf_counter()
        if self.observer is not None:
            self.observer.predicted(
                self.model,
                rows=len(rows),
                latency_ms=(finished - started) * 1000,
                unseen=sum(1 for flagged in unseen if flagged),
                mean_score=sum(probabilities) / len(probabilities),
            )
        if self.capture is not None:
            latency_ms = (finished - (started if received_at is None else received_at)) * 1000
            self._capture(self.capture, rows, predictions, latency_ms)
        return predictions

    def _capture(
        self,
        sink: CaptureSink,
        rows: Sequence[Row],
        predictions: list[dict[str, Any]],
        latency_ms: float,
    ) -> None:
        """One record per row; the latency is the request's, the same on every row of a batch
        (its rows are scored together in one call, so each waited for all of it)."""
        try:
            # What every row shares, once (all values come from a validated request or the
            # model: nothing to validate), then each row's own values as columns.
            shared = CaptureRecord.model_construct(
                captured_at=datetime.now(UTC),
                prediction_id="",
                model_name=self.model.name,
                model_version=self.model.version,
                bundle_sha256=self.model.bundle.digest,
                function_version=self.function_version,
                features={},
                probability=0.0,
                label=self._labels[0],
                latency_ms=round(latency_ms, 3),
            )
            records = CaptureBatch(
                shared,
                [
                    (
                        prediction["prediction_id"],
                        self._captured_features(row),
                        prediction["probability"],
                        prediction["label"],
                        _flags(prediction["unseen_categories"]),
                    )
                    for row, prediction in zip(rows, predictions, strict=True)
                ],
            )
            sink.write(records)
        except Exception as exc:  # capture must never fail or slow down the answer
            self.capture_errors += len(rows)
            log.warning(
                "capture of %d record(s) failed in %s: %s",
                len(rows),
                type(sink).__name__,
                type(exc).__name__,
            )
            if self.observer is not None:
                self.observer.capture_failed(self.model, records=len(rows))

    def _captured_features(self, row: Row) -> dict[str, FeatureValue]:
        features = cast(dict[str, FeatureValue], row)
        if not self._policy_alters:
            # Validated rows are fresh dicts of JSON values, owned by this request: no copy.
            return features if isinstance(features, dict) else dict(features)
        return self.capture_policy.apply(features)


def _flags(unseen: list[str]) -> tuple[str, ...]:
    return tuple(f"unseen:{name}" for name in unseen) if unseen else ()
