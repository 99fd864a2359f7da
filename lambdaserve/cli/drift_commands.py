"""``lambdaserve drift run`` and ``lambdaserve drift show``: the drift job on the local backend.

``drift run`` judges one window of ``<store>/captures`` (the window the schedule at ``--at``
would judge, exactly as the Lambda does), of every model or only ``--model``'s (reading only its
``captures/model=<name>`` tree), against each model version's own bundle reference and
writes ``<store>/drift-reports/<model>/<version>/<window end>.json`` and ``.html`` once; a rerun
writes nothing and prints the same verdicts.

Exit codes: 0 no dataset drift in the window; 7 the dataset verdict of at least one model
version is drift; 1 the job failed (the message names the version and why); 2 usage errors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lambdaserve.cli.options import StoreOption, parse_model_ref, parse_time
from lambdaserve.drift.job import DEFAULT_MIN_SAMPLES
from lambdaserve.drift.report import DriftReport, ReportKey
from lambdaserve.drift.report_store import DriftReportStore
from lambdaserve.drift.scheduled import DriftSchedule, run_scheduled_drift
from lambdaserve.drift.windows import DEFAULT_LATENESS, DEFAULT_WINDOW, drift_window
from lambdaserve.kernel.artifacts import version_order
from lambdaserve.kernel.capture import is_model_name
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.views.console import fail, out
from lambdaserve.views.drift import print_report
from lambdaserve.wiring.local import open_local

DRIFT_EXIT = 7
drift_app = typer.Typer(
    help="Drift of captured traffic against each model version's training reference.",
    no_args_is_help=True,
)


ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Judge only this model's captures [default: every model]"),
]


def _scheduled(at: str | None) -> datetime:
    return datetime.now(UTC) if at is None else parse_time(at, "--at")


@drift_app.command("run")
def run(
    at: Annotated[
        str | None,
        typer.Option("--at", help="Scheduled time, ISO 8601; no offset means UTC (default: now)"),
    ] = None,
    window_minutes: Annotated[
        int, typer.Option("--window-minutes", min=1, max=1440, help="Window length")
    ] = int(DEFAULT_WINDOW.total_seconds() // 60),
    lateness_minutes: Annotated[
        int,
        typer.Option("--lateness-minutes", min=0, help="How late captures may arrive"),
    ] = int(DEFAULT_LATENESS.total_seconds() // 60),
    min_samples: Annotated[
        int, typer.Option("--min-samples", min=1, help="Fewer rows: insufficient_data")
    ] = DEFAULT_MIN_SAMPLES,
    skip: Annotated[
        list[str] | None,
        typer.Option(
            "--skip",
            help="A feature the capture policy masks or hashes (repeatable); skipped with a note",
        ),
    ] = None,
    model: ModelOption = None,
    store: StoreOption = None,
) -> None:
    """Judge the window of the schedule at --at; write each model version's report once.

    The window ends at floor(at - lateness, window). Exit code 7: a dataset verdict is drift.
    """
    scheduled = _scheduled(at)
    window = timedelta(minutes=window_minutes)
    lateness = timedelta(minutes=lateness_minutes)
    try:
        span = drift_window(scheduled, window=window, lateness=lateness)
    except ValueError as exc:
        fail(str(exc), code=2)
    if model is not None and not is_model_name(model):
        fail(f"--model {model!r} is not a model name", code=2)
    ports = open_local(store).drift_ports(skip or ())  # printed below: nothing is published
    reports = ports.reports
    schedule = DriftSchedule(window=window, lateness=lateness, min_samples=min_samples)
    try:
        written = run_scheduled_drift(scheduled, ports, schedule, model_name=model).written
    except LambdaserveError as exc:
        fail(str(exc))
    out.print(
        f"window {span.start.isoformat()} to {span.end.isoformat()} (scheduled "
        f"{scheduled.isoformat()}, lateness {lateness_minutes} min)",
        highlight=False,
    )
    new = {report.key: report for report in written}
    shown = _window_reports(reports, new, span.end, model)
    if not shown:
        out.print("no captured predictions in this window")
    for report in shown:
        print_report(report, state="written" if report.key in new else "already written")
    if any(report.dataset.verdict == "drift" for report in shown):
        raise typer.Exit(DRIFT_EXIT)


def _window_reports(
    reports: DriftReportStore,
    new: dict[ReportKey, DriftReport],
    window_end: datetime,
    model: str | None,
) -> list[DriftReport]:
    """Every report of the window (of ``model``, or of every model): this run's, or stored."""
    in_window = [key for key in reports.list_keys(model) if key.window_end == window_end]
    judged = [new.get(key) or reports.get(key) for key in in_window]
    return [report for report in judged if report is not None]


def _selected(reports: DriftReportStore, model: str | None) -> list[ReportKey]:
    if model is None:
        return reports.list_keys()
    name, version = parse_model_ref(model)
    try:
        return reports.list_keys(name, version)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME[:VERSION]") from exc


@drift_app.command("show")
def show(
    model: Annotated[
        str | None, typer.Argument(help="NAME or NAME:VERSION [default: every model]")
    ] = None,
    latest: Annotated[
        bool, typer.Option("--latest", help="Only the most recent report of the selection")
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write the most recent report's HTML page here"),
    ] = None,
    store: StoreOption = None,
) -> None:
    """The last report of each selected model version (or only the most recent one)."""
    reports = open_local(store).drift_reports()
    keys = _selected(reports, model)
    if not keys:
        fail(f"no drift reports{f' of {model}' if model else ''}; run `lambdaserve drift run`")
    last: dict[tuple[str, str], ReportKey] = {}
    for key in keys:  # oldest first, so the last one per version wins
        last[(key.model_name, key.model_version)] = key
    by_version = sorted(last.values(), key=lambda k: (k.model_name, version_order(k.model_version)))
    chosen = [keys[-1]] if latest else by_version
    for key in chosen:
        report = reports.get(key)
        if report is not None:
            print_report(report)
    if html is not None:
        page = reports.html(keys[-1])
        if page is None:
            fail(f"the report {keys[-1].stem} has no HTML page")
        try:
            html.write_bytes(page)
        except OSError as exc:
            fail(f"cannot write {html}: {exc.strerror}")
        out.print(f"wrote {escape(str(html))}", highlight=False)
