"""``lambdaserve demo``: the whole local lifecycle on synthetic churn data, with a summary.

For now: generate data → train (SageMaker contract) → verified bundle in the local store → serve
on loopback → real and bad traffic → summary. Exits non-zero if any expectation fails.
"""

from __future__ import annotations

import csv
from typing import Annotated

import typer
from rich.table import Table

from lambdaserve.cli.console import fail, out
from lambdaserve.cli.demo_drift import SCORE, flagged, run_drift_chapter
from lambdaserve.cli.demo_registry import run_registry_chapter
from lambdaserve.cli.demo_rollout import run_rollout_chapter
from lambdaserve.cli.demo_traffic import TrafficReport, send_traffic
from lambdaserve.cli.options import StoreOption, open_store
from lambdaserve.cli.train_command import print_summary, train_model
from lambdaserve.core.csv_rows import feature_rows
from lambdaserve.core.errors import LambdaserveError
from lambdaserve.datasets import churn
from lambdaserve.lifecycle.ab_report import ABReport
from lambdaserve.local.capture_log import CaptureLog
from lambdaserve.serving.app import create_app
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.settings import ServingSettings

MODEL_NAME = "churn"


def _traffic_table(report: TrafficReport) -> Table:
    table = Table(title="traffic")
    for column in ("endpoint", "requests", "statuses", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column in ("endpoint", "statuses") else "right")
    for endpoint, statuses in sorted(report.statuses.items()):
        table.add_row(
            endpoint,
            str(sum(statuses.values())),
            ", ".join(f"{code} x{count}" for code, count in sorted(statuses.items())),
            f"{report.percentile(endpoint, 50):.1f}",
            f"{report.percentile(endpoint, 99):.1f}",
        )
    return table


def _ab_summary(report: ABReport) -> str:
    if not report.comparisons:
        return "not compared"
    (comparison, *_) = report.comparisons
    labelled = {arm.version: arm.labelled for arm in report.arms}
    return (
        f"log loss {comparison.log_loss_difference:+.3f} (p = {comparison.log_loss_p_value:.2g})"
        f" on {labelled[comparison.version]} + {labelled[comparison.baseline]} outcomes: "
        f"{comparison.verdict}"
    )


def demo(
    store: StoreOption = None,
    rows: Annotated[int, typer.Option("--rows", min=200, help="Training rows to generate")] = 5000,
    traffic_rows: Annotated[int, typer.Option("--traffic-rows", min=1, help="Rows to send")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Run the local lifecycle end to end on synthetic customer-churn data."""
    artifact_store = open_store(store)
    work = artifact_store.root / "demo"
    work.mkdir(parents=True, exist_ok=True)
    out.rule("1. data")
    train_csv = churn.write_churn_csv(work / "churn-train.csv", rows, seed=seed)
    traffic_csv = churn.write_churn_csv(work / "churn-traffic.csv", traffic_rows, seed=seed + 1)
    holdout_csv = churn.write_churn_csv(work / "churn-holdout.csv", 2000, seed=seed + 2)
    out.print(
        f"{rows} training rows → {train_csv}\n{traffic_rows} traffic rows → {traffic_csv}"
        f"\n2000 shared holdout rows → {holdout_csv}"
    )
    out.rule("2. train → verified bundle")
    try:
        stored = train_model(
            artifact_store,
            train_csv,
            {
                "target": churn.TARGET,
                "drop": [churn.ID_COLUMN],
                "model_name": MODEL_NAME,
                "estimator": "random_forest",
            },
            progress=True,
        )
        print_summary(stored)
        out.rule("3. register → gate → champion → publish; v2 challenger")
        chapter = run_registry_chapter(artifact_store, stored, train_csv, holdout_csv)
        out.rule("4. serve the champion")
        loaded = LoadedModel.from_bundle(artifact_store.open(stored.name, stored.version))
    except LambdaserveError as exc:
        fail(str(exc))
    settings = ServingSettings()
    schema = loaded.bundle.manifest.features
    with traffic_csv.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    traffic = list(feature_rows(schema, records))
    # The traffic file holds the true outcome too: the rollout chapter reports it as feedback.
    classes = {str(c): c for c in loaded.bundle.manifest.classes}
    outcomes = [classes[record[churn.TARGET]] for record in records]
    unseen_column = schema.categorical[0].name if schema.categorical else None
    app = create_app(loaded, settings=settings, capture=CaptureLog(artifact_store.root))
    with serve_in_thread(app) as base_url:
        out.print(
            f"serving {loaded.name}:{loaded.version} ({loaded.predictor.runtime}) at {base_url}"
        )
        report = send_traffic(
            base_url,
            traffic,
            unseen_column=unseen_column,
            max_batch_rows=settings.max_batch_rows,
            max_body_bytes=settings.max_body_bytes,
        )
    out.print(_traffic_table(report))
    out.rule("5. canary under load → promoted; bad v3 → rolled back by the guard")
    rollout = run_rollout_chapter(artifact_store, train_csv, holdout_csv, traffic, outcomes)
    good, bad = rollout.good, rollout.bad
    out.rule("6. shifted traffic → the drift report flags the shifted features, not the others")
    drift_reports = run_drift_chapter(artifact_store, seed=seed + 3)
    drifted = {f"v{r.model_version}": sorted(flagged(r)) for r in drift_reports}
    summary = Table(title="demo summary", show_header=False)
    summary.add_row("model", f"{loaded.name} version {loaded.version} ({loaded.predictor.runtime})")
    summary.add_row("holdout ROC AUC", f"{stored.manifest.metrics['roc_auc']:.4f}")
    summary.add_row("bundle sha256", stored.digest)
    summary.add_row(
        "registry",
        f"v{chapter.champion.version} champion, "
        + (f"v{chapter.challenger.version} challenger" if chapter.challenger else "no challenger"),
    )
    summary.add_row("status mismatches", str(len(chapter.status.problems)))
    summary.add_row("unseen categories flagged", str(report.unseen_flagged))
    summary.add_row("request expectations failed", str(len(report.failed_expectations)))
    summary.add_row("v2 canary", f"{good.status} ({len(good.history)} events)")
    summary.add_row("bad v3 canary", f"{bad.status}: {bad.history[-1].reason}")
    summary.add_row("v2 vs v1 on ground truth", _ab_summary(rollout.ab))
    summary.add_row(
        "drift flagged",
        "; ".join(
            f"{version}: {', '.join(features) or 'nothing'}"
            for version, features in drifted.items()
        ),
    )
    out.print(summary)
    problems = report.failed_expectations + chapter.status.problems
    if good.status != "promoted":
        problems.append(f"the v2 canary ended {good.status}, expected promoted")
    if bad.status != "rolled_back":
        problems.append(f"the bad v3 canary ended {bad.status}, expected rolled_back")
    if not rollout.ab.comparisons:
        problems.append(f"the A/B report compared nothing: {'; '.join(rollout.ab.notes)}")
    allowed = set(churn.SHIFTED_FEATURES) | {SCORE}
    champion_flags = drifted.get(f"v{good.challenger.model_version}", [])
    if not {"monthly_charges", "num_support_tickets"} <= set(champion_flags):
        problems.append(f"drift missed shifted features: flagged {champion_flags}")
    for version, features in drifted.items():
        if set(features) - allowed:
            problems.append(
                f"drift flagged unshifted features for {version}: {sorted(set(features) - allowed)}"
            )
    if problems:
        fail("; ".join(problems))
    out.print(
        "[green]demo finished: every request answered as expected, v2 promoted, v3 rolled "
        "back, the shifted features flagged as drift[/]"
    )
