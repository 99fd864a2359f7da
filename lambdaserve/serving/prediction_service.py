"""The prediction use case: validated rows in, predictions out, one vectorized call per request.

With a capture sink, every scored row also becomes one ``CaptureRecord`` (features after the
capture policy's masking and hashing) handed to the sink before the answer leaves. Capture never
fails a request: a sink or record error is logged and counted (``capture_errors``, and the
observer's ``capture_failed``), and the prediction is answered as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import numpy as np

from lambdaserve.kernel.capture import (
    CapturePolicy,
    CapturePolicySource,
    CaptureRecord,
    CaptureSink,
    FeatureValue,
    FeedbackRecord,
)
from lambdaserve.kernel.capture_lines import CaptureBatch, Outputs
from lambdaserve.kernel.encoding import Row, rows_to_columns
from lambdaserve.kernel.errors import (
    CapturePolicyError,
    CapturePolicyUnavailableError,
    FeedbackUnavailableError,
    NonFiniteScoreError,
)
from lambdaserve.kernel.prediction_ids import new_prediction_ids
from lambdaserve.kernel.schema import MISSING_CATEGORY
from lambdaserve.serving.feedback_tokens import FeedbackSigner
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.task_answers import task_answers

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
        capture_policy: CapturePolicy | CapturePolicySource | None = None,
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
        self._answer = task_answers(manifest)
        # A source (the stage's policy, which may change while this version serves) is asked
        # before every capture; a fixed policy is the one of this process's settings.
        self._policy_source: CapturePolicySource | None = None
        if capture_policy is None or isinstance(capture_policy, CapturePolicy):
            self.capture_policy = capture_policy or CapturePolicy()
        else:  # read now: a version that cannot know its policy serves nothing (503)
            self._policy_source = capture_policy
            self.capture_policy = capture_policy.current()
        if self._policy_source is None and not self.capture_policy.enabled:
            capture = None
        self.capture = capture
        self.capture_errors = 0
        self.function_version = function_version
        self._adopt(self.capture_policy)

    def _adopt(self, policy: CapturePolicy) -> None:
        """Make ``policy`` the one in force, unless it would capture raw what it meant to hide."""
        problem = policy.unknown_fields(self._schema.names)
        if self.capture is not None and policy.enabled and problem is not None:
            raise CapturePolicyError(problem)
        self.capture_policy = policy
        self._policy_alters = bool(policy.altered)

    def policy_in_force(self) -> CapturePolicy | None:
        """The policy to capture this request under (``None``: it cannot be known now, so
        capture nothing); raises ``CapturePolicyError`` when the stage's policy names a field
        this model lacks: nothing is served until the policy is fixed."""
        if self._policy_source is None:
            return self.capture_policy
        try:
            policy = self._policy_source.current()
        except CapturePolicyUnavailableError:
            return None  # the source logged why, once per read; the skip is counted
        if policy is not self.capture_policy:
            self._adopt(policy)
        return policy

    def serving_problem(self) -> str | None:
        """Why this model cannot be served right now (the stage's capture policy names a field
        it lacks), or ``None``."""
        if self.capture is None:
            return None
        try:
            self.policy_in_force()
        except CapturePolicyError as exc:
            return str(exc)
        return None

    def forged_feedback(self, items: Sequence[Mapping[str, Any]]) -> list[int]:
        """The indices of ``items`` whose ``feedback_token`` is not the one this model answered
        with their ``prediction_id``."""
        name, signer = self.model.name, self.feedback_signer
        return [
            index
            for index, item in enumerate(items)
            if not signer.verify(name, item["prediction_id"], item["feedback_token"])
        ]

    def record_feedback(self, items: Sequence[Mapping[str, Any]]) -> int:
        """Store verified outcomes (``prediction_id`` with ``label``, or ``value`` for regression)
        in the capture stream; all or
        nothing, so a client told to send again duplicates nothing it was not told was kept."""
        if self.capture is None:
            raise FeedbackUnavailableError(
                "feedback is stored with the prediction captures, and capture is off here "
                "(CAPTURE_ENABLED=false)"
            )
        now = datetime.now(UTC)
        records = [
            FeedbackRecord(
                received_at=now,
                prediction_id=item["prediction_id"],
                model_name=self.model.name,
                label=item.get("label"),
                value=item.get("value"),
            )
            for item in items
        ]
        try:
            self.capture.write_feedback(records)
        except Exception as exc:
            log.exception("feedback could not be stored")
            raise FeedbackUnavailableError(
                "feedback could not be stored; nothing was kept, send it again"
            ) from exc
        return len(records)

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
        policy = self.policy_in_force() if self.capture is not None else None
        columns = rows_to_columns(self._schema, rows)
        raw = self.model.predictor.predict_outputs(columns)
        finite = np.isfinite(raw) if raw.ndim == 1 else np.isfinite(raw).all(axis=1)
        if not finite.all():
            # Never answered (NaN is not JSON) nor captured (it poisons the A/B report).
            raise NonFiniteScoreError(
                f"the model produced no finite score for {int((~finite).sum())} of "
                f"{len(rows)} row(s); nothing was answered or captured (extreme numeric values?)"
            )
        answered, score = self._answer(raw)
        unseen = self._unseen(columns, len(rows))
        ref = self._ref
        ids = new_prediction_ids(len(rows))
        predictions = [
            {
                "prediction_id": prediction_id,
                "model": ref,
                **outputs,
                "unseen_categories": flagged,
                "feedback_token": token,
            }
            for prediction_id, outputs, flagged, token in zip(
                ids,
                answered,
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
                mean_score=score,
            )
        if self.capture is not None:
            if policy is None:  # the stage's policy cannot be known right now: capture nothing
                self._count_failed(len(rows))
            elif policy.enabled:
                latency_ms = (finished - (started if received_at is None else received_at)) * 1000
                self._capture(self.capture, rows, predictions, answered, latency_ms)
        return predictions

    def _count_failed(self, records: int) -> None:
        self.capture_errors += records
        if self.observer is not None:
            self.observer.capture_failed(self.model, records=records)

    def _capture(
        self,
        sink: CaptureSink,
        rows: Sequence[Row],
        predictions: list[dict[str, Any]],
        answered: list[Outputs],
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
                latency_ms=round(latency_ms, 3),
            )
            records = CaptureBatch(
                shared,
                [
                    (
                        prediction["prediction_id"],
                        self._captured_features(row),
                        outputs,
                        _flags(prediction["unseen_categories"]),
                    )
                    for row, prediction, outputs in zip(rows, predictions, answered, strict=True)
                ],
            )
            sink.write(records)
        except Exception as exc:  # capture must never fail or slow down the answer
            log.warning(
                "capture of %d record(s) failed in %s: %s",
                len(rows),
                type(sink).__name__,
                type(exc).__name__,
            )
            self._count_failed(len(rows))

    def _captured_features(self, row: Row) -> dict[str, FeatureValue]:
        features = cast(dict[str, FeatureValue], row)
        if not self._policy_alters:
            # Validated rows are fresh dicts of JSON values, owned by this request: no copy.
            return features if isinstance(features, dict) else dict(features)
        return self.capture_policy.apply(features)


def _flags(unseen: list[str]) -> tuple[str, ...]:
    return tuple(f"unseen:{name}" for name in unseen) if unseen else ()
