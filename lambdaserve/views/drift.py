"""A drift report as a terminal table (``drift run``, ``drift show`` and the demo)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from lambdaserve.drift.report import DriftReport
from lambdaserve.views.console import out

_VERDICT_STYLE = {"drift": "bold red", "no_drift": "green", "insufficient_data": "dim"}


def _verdict(verdict: str) -> str:
    return f"[{_VERDICT_STYLE.get(verdict, '')}]{verdict}[/]"


def print_report(report: DriftReport, *, state: str = "") -> None:
    """A model version's verdicts as a table, with the dataset-level verdicts under it."""
    title = (
        f"{report.model_name} v{report.model_version}: {report.window_start:%Y-%m-%d %H:%M} to "
        f"{report.window_end:%Y-%m-%d %H:%M} UTC, {report.rows} predictions"
    )
    table = Table(title=escape(f"{title}{f' ({state})' if state else ''}"))
    for column in ("feature", "test", "score", "threshold", "verdict"):
        table.add_column(column, justify="right" if column in {"score", "threshold"} else "left")
    for result in report.results:
        table.add_row(
            escape(report.display_name(result.feature)),
            result.test,
            "-" if result.score is None else f"{result.score:.4f}",
            f"{result.threshold:g}",
            _verdict(result.verdict),
        )
    out.print(table)
    dataset = report.dataset
    out.print(
        f"  dataset: {_verdict(dataset.verdict)} ({len(dataset.drifted_features)} of "
        f"{dataset.tested} features drifted, share rule {dataset.share:g}); "
        f"FDR {report.fdr_alpha:g}: {escape(', '.join(report.fdr_drifted) or 'none')}; "
        f"persistent ({report.persistence.k} of {report.persistence.n}): "
        f"{'yes' if report.persistent else 'no'}",
        highlight=False,
    )
    for skipped in report.skipped:
        out.print(f"  skipped {escape(skipped.feature)}: {escape(skipped.reason)}", highlight=False)
    for note in report.notes:
        out.print(f"  note: {escape(note)}", highlight=False)
