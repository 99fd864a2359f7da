"""An A/B report as terminal tables (``ab report`` and the demo)."""

from __future__ import annotations

from rich.table import Table

from lambdaserve.abtest.report import ABReport
from lambdaserve.abtest.statistics import ArmQuality, Comparison, Interval
from lambdaserve.kernel.manifest import Task
from lambdaserve.views.console import out

#: How a comparison's metrics read in a sentence.
_METRIC_NAMES = {
    "log_loss": "log loss",
    "accuracy": "accuracy",
    "squared_error": "squared error",
    "absolute_error": "absolute error",
}


def _estimate(value: float | None, interval: Interval | None = None, spec: str = ".3f") -> str:
    if value is None:
        return "-"
    return f"{value:{spec}}" + (
        f" ({interval.low:{spec}}-{interval.high:{spec}})" if interval else ""
    )


def _task_rows(task: Task, arms: tuple[ArmQuality, ...]) -> dict[str, list[str]]:
    """The estimates a model of ``task`` has, one row each."""
    if task == "regression":
        return {
            "MSE (95% CI)": [_estimate(a.mse, a.mse_ci, ".4g") for a in arms],
            "RMSE": [_estimate(a.rmse, spec=".4g") for a in arms],
            "MAE (95% CI)": [_estimate(a.mae, a.mae_ci, ".4g") for a in arms],
            "mean observed": [_estimate(a.mean_observed, spec=".4g") for a in arms],
            "mean prediction": [_estimate(a.mean_prediction, spec=".4g") for a in arms],
        }
    rows = {
        "accuracy (95% CI)": [_estimate(a.accuracy, a.accuracy_ci) for a in arms],
        "log loss (95% CI)": [_estimate(a.log_loss, a.log_loss_ci) for a in arms],
    }
    if task == "binary_classification":
        rows |= {
            "Brier (95% CI)": [_estimate(a.brier, a.brier_ci) for a in arms],
            "ROC AUC": [_estimate(a.roc_auc) for a in arms],
            "observed positive rate": [_estimate(a.observed_positive_rate) for a in arms],
            "mean predicted score": [_estimate(a.mean_score) for a in arms],
        }
    return rows


def metric_name(metric: str) -> str:
    """A comparison's metric as it reads in a sentence (``log_loss``: ``log loss``)."""
    return _METRIC_NAMES.get(metric, metric.replace("_", " "))


def _comparison_line(c: Comparison, spec: str = "+.4f") -> str:
    """``v2 vs v1: log loss -0.0123 (-0.0200 to -0.0046, p = 0.002), accuracy ...: verdict``."""
    ci = c.difference_ci
    return (
        f"v{c.version} vs v{c.baseline}: {metric_name(c.metric)} "
        f"{c.difference:{spec}} ({ci.low:{spec}} to {ci.high:{spec}}, p = {c.p_value:.3g}), "
        f"{metric_name(c.secondary_metric)} "
        f"{c.secondary_difference:{spec}} (p = {c.secondary_p_value:.3g}): {c.verdict}"
    )


def print_ab_report(report: ABReport) -> None:
    """One column per arm (it fits a terminal with two or three arms)."""
    table = Table(title=f"A/B report: {report.model_name} (baseline v{report.baseline})")
    table.add_column("")
    for arm in report.arms:
        table.add_column(f"v{arm.version}", justify="right")
    rows = {
        "served": [str(arm.served) for arm in report.arms],
        "labelled": [str(arm.labelled) for arm in report.arms],
        **_task_rows(report.task, report.arms),
    }
    for label, cells in rows.items():
        table.add_row(label, *cells)
    out.print(table)
    spec = "+.4g" if report.task == "regression" else "+.4f"
    for c in report.comparisons:
        out.print(_comparison_line(c, spec), highlight=False)
    if report.sample_ratio is not None:
        ratio = report.sample_ratio
        shares = ", ".join(
            f"v{v} {ratio.observed_share[v]:.3f} (intended {ratio.expected_share[v]:.3f})"
            for v in ratio.expected_share
        )
        verdict = "MISMATCH" if ratio.mismatch else "ok"
        out.print(f"sample ratio: {shares}; p = {ratio.p_value:.3g}: {verdict}", highlight=False)
    out.print(
        f"feedback: {report.feedback_received} received, {report.feedback_unmatched} for "
        f"predictions outside the window, {report.feedback_duplicates} repeated",
        highlight=False,
    )
    for note in report.notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
