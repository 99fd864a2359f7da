"""The drift job's metrics as CloudWatch embedded metric format (Powertools), printed to the
drift function's log: per report ``DriftRuns``, ``DriftedFeatures``, ``DatasetDrift`` and
``PersistentDrift`` (by ``model_name`` and ``model_version``), and per completed run the
heartbeat ``DriftJobRuns`` with ``DriftReportsWritten``: by ``model_name`` for a run of one
model (each schedule's, so each model's heartbeat alarm reads its own series and one stopped
schedule is not hidden by the others), ``service`` only for a run of every model."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from lambdaserve.aws.emf import emf_metrics
from lambdaserve.drift.report import DriftReport
from lambdaserve.kernel.metric_names import (
    DRIFT_SERVICE,
    MODEL_NAME,
    MODEL_VERSION,
    DriftMetric,
)


class EmfDriftMetrics:
    """A ``DriftMetricsPort``: one EMF document per report, with the report's model name and
    version as dimensions, and one heartbeat document per completed run."""

    def __init__(self) -> None:
        self.metrics = emf_metrics(DRIFT_SERVICE)

    def report(self, report: DriftReport) -> None:
        self.metrics.add_dimension(name=MODEL_NAME, value=report.model_name)
        self.metrics.add_dimension(name=MODEL_VERSION, value=report.model_version)
        for name, value in (
            (DriftMetric.RUNS, 1),
            (DriftMetric.DRIFTED_FEATURES, len(report.dataset.drifted_features)),
            (DriftMetric.DATASET_DRIFT, int(report.dataset.verdict == "drift")),
            (DriftMetric.PERSISTENT_DRIFT, int(report.persistent)),
        ):
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        self.metrics.flush_metrics()

    def heartbeat(self, reports: int, model_name: str | None = None) -> None:
        """One document per completed run, by the model it judged (without model dimensions for
        a run of every model), so one plain alarm per model reads it (a run over a window
        without traffic writes no report but is still a run)."""
        if model_name is not None:
            self.metrics.add_dimension(name=MODEL_NAME, value=model_name)
        self.metrics.add_metric(name=DriftMetric.JOB_RUNS, unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(
            name=DriftMetric.REPORTS_WRITTEN, unit=MetricUnit.Count, value=reports
        )
        self.metrics.flush_metrics()
