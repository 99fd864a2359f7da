"""Every CloudWatch metric our functions emit (as EMF), defined once.

Emitted by the predict function (``wiring.aws_predict``) and the drift function; read by the
rollout guard (``aws.cloudwatch_guard``) and alarmed on by the CDK stacks, which never import
runtime code: ``tests/infra/test_metric_names.py`` checks every metric a synthesized template
names against these.
"""

from __future__ import annotations

from enum import StrEnum

#: The EMF namespace of every metric below (``POWERTOOLS_METRICS_NAMESPACE``).
NAMESPACE = "lambdaserve"
#: The ``service`` dimension Powertools adds: which function emitted the metric.
PREDICT_SERVICE = "predict"
DRIFT_SERVICE = "drift"
#: The dimensions of per-model metrics (with ``service``).
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"


class PredictMetric(StrEnum):
    """The predict function's metrics, by model name and version."""

    PREDICTIONS = "Predictions"  # rows scored
    MEAN_SCORE = "MeanScore"  # per request: see serving.task_answers (one scale for every task)
    MODEL_LATENCY = "ModelLatency"  # milliseconds in the model call
    UNSEEN_CATEGORY_ROWS = "UnseenCategoryRows"
    CAPTURE_ERRORS = "CaptureErrors"
    LATENCY = "Latency"  # milliseconds through the whole handler
    REQUESTS = "Requests"
    PREDICTION_REQUESTS = "PredictionRequests"  # the guard's 4XX-share denominator
    SERVER_ERRORS = "ServerErrors"  # 5XX answers to predictions
    CLIENT_ERRORS = "ClientErrors"  # 4XX answers to predictions
    OTHER_REQUEST_ERRORS = "OtherRequestErrors"  # 4XX/5XX of anything else (e.g. feedback)


class DriftMetric(StrEnum):
    """The drift function's metrics: per report (by model name and version), and the heartbeat
    of every completed run (``service`` only)."""

    RUNS = "DriftRuns"
    DRIFTED_FEATURES = "DriftedFeatures"
    DATASET_DRIFT = "DatasetDrift"
    PERSISTENT_DRIFT = "PersistentDrift"
    JOB_RUNS = "DriftJobRuns"
    REPORTS_WRITTEN = "DriftReportsWritten"


EMITTED: frozenset[str] = frozenset({*PredictMetric, *DriftMetric})
