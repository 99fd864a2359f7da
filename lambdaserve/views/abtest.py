"""An A/B report as terminal tables (``ab report`` and the demo)."""

from __future__ import annotations

from rich.table import Table

from lambdaserve.abtest.report import ABReport
from lambdaserve.abtest.statistics import Interval
from lambdaserve.views.console import out


def _estimate(value: float | None, interval: Interval | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" ({interval.low:.3f}-{interval.high:.3f})" if interval else "")


def print_ab_report(report: ABReport) -> None:
    """One column per arm (it fits a terminal with two or three arms)."""
    table = Table(title=f"A/B report: {report.model_name} (baseline v{report.baseline})")
    table.add_column("")
    for arm in report.arms:
        table.add_column(f"v{arm.version}", justify="right")
    rows = {
        "served": [str(arm.served) for arm in report.arms],
        "labelled": [str(arm.labelled) for arm in report.arms],
        "accuracy (95% CI)": [_estimate(a.accuracy, a.accuracy_ci) for a in report.arms],
        "log loss (95% CI)": [_estimate(a.log_loss, a.log_loss_ci) for a in report.arms],
        "Brier (95% CI)": [_estimate(a.brier, a.brier_ci) for a in report.arms],
        "ROC AUC": [_estimate(a.roc_auc) for a in report.arms],
        "observed positive rate": [_estimate(a.observed_positive_rate) for a in report.arms],
        "mean predicted score": [_estimate(a.mean_score) for a in report.arms],
    }
    for label, cells in rows.items():
        table.add_row(label, *cells)
    out.print(table)
    for c in report.comparisons:
        ci = c.log_loss_difference_ci
        out.print(
            f"v{c.version} vs v{c.baseline}: log loss {c.log_loss_difference:+.4f} "
            f"({ci.low:+.4f} to {ci.high:+.4f}, p = {c.log_loss_p_value:.3g}), accuracy "
            f"{c.accuracy_difference:+.4f} (p = {c.accuracy_p_value:.3g}): {c.verdict}",
            highlight=False,
        )
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
