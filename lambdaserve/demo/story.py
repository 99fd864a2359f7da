"""The demo story: the whole local lifecycle on synthetic churn data, told chapter by chapter.

Data → train (SageMaker contract) → verified bundle in the local store → register, gate, publish
→ serve on loopback with real and bad traffic → a canary promoted and a bad one rolled back by the
guard → ground-truth feedback and the A/B report → shifted traffic flagged as drift → a
multiclass and a regression model, each answering and taking feedback of its kind → a summary.
``run_demo`` answers the expectations that failed; ``lambdaserve demo`` exits non-zero on any.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from lambdaserve.abtest.report import ABReport
from lambdaserve.datasets import churn
from lambdaserve.demo.drift import SCORE, flagged, run_drift_chapter
from lambdaserve.demo.registry import RegistryChapter, run_registry_chapter
from lambdaserve.demo.rollout import RolloutChapter, run_rollout_chapter
from lambdaserve.demo.tasks import TasksChapter, run_tasks_chapter
from lambdaserve.demo.traffic import TrafficReport, send_traffic
from lambdaserve.kernel.artifacts import StoredBundle
from lambdaserve.kernel.csv_rows import feature_rows
from lambdaserve.kernel.manifest import ClassLabel
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.views.abtest import metric_name
from lambdaserve.views.console import out
from lambdaserve.views.training import print_summary, train_model
from lambdaserve.wiring.local import LocalBackend

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
        f"{metric_name(comparison.metric)} {comparison.difference:+.3f} "
        f"(p = {comparison.p_value:.2g})"
        f" on {labelled[comparison.version]} + {labelled[comparison.baseline]} outcomes: "
        f"{comparison.verdict}"
    )


@dataclass(frozen=True)
class DemoData:
    train: Path
    traffic: Path
    holdout: Path


def write_data(work: Path, rows: int, traffic_rows: int, seed: int) -> DemoData:
    """Synthetic churn data: training rows, traffic rows (with outcomes) and a shared holdout."""
    data = DemoData(
        train=churn.write_churn_csv(work / "churn-train.csv", rows, seed=seed),
        traffic=churn.write_churn_csv(work / "churn-traffic.csv", traffic_rows, seed=seed + 1),
        holdout=churn.write_churn_csv(work / "churn-holdout.csv", 2000, seed=seed + 2),
    )
    out.print(
        f"{rows} training rows → {data.train}\n{traffic_rows} traffic rows → {data.traffic}"
        f"\n2000 shared holdout rows → {data.holdout}"
    )
    return data


def serve_champion(
    backend: LocalBackend, stored: StoredBundle, traffic_csv: Path
) -> tuple[TrafficReport, list[dict[str, object]], list[ClassLabel]]:
    """Serve the champion on loopback and send it real and bad traffic; return what the later
    chapters replay: the traffic rows and their true outcomes."""
    loaded = LoadedModel.from_bundle(backend.store.open(stored.name, stored.version))
    settings = ServingSettings()
    schema = loaded.bundle.manifest.features
    with traffic_csv.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    traffic = list(feature_rows(schema, records))
    # The traffic file holds the true outcome too: the rollout chapter reports it as feedback.
    classes = {str(c): c for c in loaded.bundle.manifest.classes}
    outcomes = [classes[record[churn.TARGET]] for record in records]
    unseen_column = schema.categorical[0].name if schema.categorical else None
    app = backend.model_app(loaded, settings)
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
    return report, traffic, outcomes


def run_demo(backend: LocalBackend, rows: int, traffic_rows: int, seed: int) -> list[str]:
    """Run every chapter and print the summary; answer the expectations that failed (none
    when the demo went as it should). A refused step raises LambdaserveError."""
    work = backend.root / "demo"
    work.mkdir(parents=True, exist_ok=True)
    out.rule("1. data")
    data = write_data(work, rows, traffic_rows, seed)
    out.rule("2. train → verified bundle")
    stored = train_model(
        backend,
        data.train,
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
    chapter = run_registry_chapter(backend, stored, data.train, data.holdout)
    out.rule("4. serve the champion")
    report, traffic, outcomes = serve_champion(backend, stored, data.traffic)
    out.rule("5. canary under load → promoted; bad v3 → rolled back by the guard")
    rollout = run_rollout_chapter(backend, data.train, data.holdout, traffic, outcomes)
    out.rule("6. shifted traffic → the drift report flags the shifted features, not the others")
    drift_reports = run_drift_chapter(backend, MODEL_NAME, seed=seed + 3)
    drifted = {f"v{r.model_version}": sorted(flagged(r)) for r in drift_reports}
    out.rule("7. other tasks: a multiclass and a regression model")
    tasks = run_tasks_chapter(backend, seed=seed + 4)
    out.print(_summary_table(stored, chapter, report, rollout, drifted, tasks))
    return _failed_expectations(chapter, report, rollout, drifted) + tasks.problems()


def _summary_table(
    stored: StoredBundle,
    chapter: RegistryChapter,
    report: TrafficReport,
    rollout: RolloutChapter,
    drifted: dict[str, list[str]],
    tasks: TasksChapter,
) -> Table:
    good, bad = rollout.good, rollout.bad
    summary = Table(title="demo summary", show_header=False)
    summary.add_row(
        "model", f"{stored.name} version {stored.version} ({stored.manifest.preferred_runtime})"
    )
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
    for model in tasks.models:
        summary.add_row(f"{model.stored.name} model", model.summary())
    return summary


def _failed_expectations(
    chapter: RegistryChapter,
    report: TrafficReport,
    rollout: RolloutChapter,
    drifted: dict[str, list[str]],
) -> list[str]:
    good, bad = rollout.good, rollout.bad
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
    return problems
