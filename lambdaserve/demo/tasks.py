"""The demo's tasks chapter: two more models on the generated table, one per other task.

A multiclass model learns which internet service a customer has (dsl, fiber or none) and a
regression model their monthly charges (without ``total_charges``, which is charges times
tenure). Each is trained through the same SageMaker contract on mixed-type data with missing
values, served on loopback, and sent a batch, a single row and feedback: outcomes of its kind
(a ``label`` for a classifier, a ``value`` for a regression) are accepted, one of the other kind
is refused. Neither is registered or published: the churn model keeps the live alias.
"""

from __future__ import annotations

import csv
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lambdaserve.datasets import churn
from lambdaserve.kernel.artifacts import StoredBundle
from lambdaserve.kernel.csv_rows import feature_rows
from lambdaserve.kernel.manifest import ClassLabel, Manifest, class_key
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.model_loader import LoadedModel
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.views.console import err, out
from lambdaserve.views.training import STAGES
from lambdaserve.wiring.local import LocalBackend

TRAIN_ROWS = 1500
REQUEST_ROWS = 40  # one single prediction and a batch of the rest; under drift's min samples
# Small forests: most of a job's ~5 s is its process importing scikit-learn, not the fit.
TREES = 30
MAX_DEPTH = 8
CV_FOLDS = 3
FEEDBACK_ROWS = 5
METRICS = {
    "multiclass_classification": ("accuracy", "macro_f1", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}

Outcome = ClassLabel | float


@dataclass(frozen=True)
class TaskSpec:
    name: str
    target: str
    task: str  # the training job's ``task`` hyperparameter
    drop: tuple[str, ...]


SPECS = (
    TaskSpec("service", "internet_service", "multiclass", (churn.ID_COLUMN, churn.TARGET)),
    TaskSpec(
        "charges", "monthly_charges", "regression", (churn.ID_COLUMN, churn.TARGET, "total_charges")
    ),
)


@dataclass(frozen=True)
class ServedTaskModel:
    """One model of the chapter: its bundle and what serving it answered."""

    stored: StoredBundle
    runtime: str
    batch_status: int
    batch_answers: int
    answer: dict[str, Any]  # the single prediction's body ({} when it failed)
    observed: Outcome  # the single row's true outcome
    feedback_field: str  # "label" or "value": the kind this model takes
    right_feedback: int  # status of FEEDBACK_ROWS outcomes of the right kind
    wrong_feedback: int  # status of one outcome of the other kind
    wrong_detail: str  # what the refusal said

    @property
    def task(self) -> str:
        return self.stored.manifest.task

    @property
    def wrong_field(self) -> str:
        return "value" if self.feedback_field == "label" else "label"

    def problems(self) -> list[str]:
        """The expectations this model's serving missed."""
        name = f"{self.stored.name} ({self.task})"
        found = []
        if self.batch_status != 200 or self.batch_answers != REQUEST_ROWS - 1:
            found.append(
                f"{name}: the batch got {self.batch_status} with {self.batch_answers} answers"
            )
        shape = _answer_problem(self.task, self.answer)
        if shape:
            found.append(f"{name}: {shape}")
        if self.right_feedback != 202:
            found.append(f"{name}: feedback with a {self.feedback_field} got {self.right_feedback}")
        if self.wrong_feedback != 422:
            found.append(f"{name}: feedback of the wrong kind got {self.wrong_feedback}, not 422")
        return found

    def summary(self) -> str:
        metrics = self.stored.manifest.metrics
        scores = ", ".join(f"{m} {metrics[m]:.3f}" for m in METRICS[self.task] if m in metrics)
        return (
            f"v{self.stored.version} {self.task}: {scores}; feedback "
            f"{self.feedback_field} {self.right_feedback}, wrong kind {self.wrong_feedback}"
        )


@dataclass(frozen=True)
class TasksChapter:
    models: tuple[ServedTaskModel, ...]

    def problems(self) -> list[str]:
        return [problem for model in self.models for problem in model.problems()]


def _answer_problem(task: str, answer: dict[str, Any]) -> str | None:
    """Why ``answer`` is not the single prediction ``task`` should answer, or None."""
    if not answer:
        return "the single prediction failed"
    if task == "multiclass_classification":
        probabilities = answer.get("probabilities") or {}
        total = sum(probabilities.values())
        if len(probabilities) != 3 or not math.isclose(total, 1.0, abs_tol=1e-3):
            return f"probabilities over {len(probabilities)} classes summing to {total:.4f}"
        if class_key(answer["label"]) not in probabilities:
            return f"label {answer['label']!r} is not one of its classes"
        return None
    prediction = answer.get("prediction")
    if not isinstance(prediction, float) or not math.isfinite(prediction):
        return f"prediction {prediction!r} is not a finite number"
    return None


def _outcomes(stored: StoredBundle, records: list[dict[str, str]]) -> list[Outcome]:
    """Each request row's true outcome, typed as feedback carries it."""
    manifest = stored.manifest
    if not manifest.is_classifier:
        return [float(record[manifest.target]) for record in records]
    classes = {class_key(c): c for c in manifest.classes}
    return [classes[record[manifest.target]] for record in records]


def _serve(backend: LocalBackend, stored: StoredBundle, requests_csv: Path) -> ServedTaskModel:
    """Serve ``stored`` on loopback: a batch, a single row, feedback of both kinds."""
    loaded = LoadedModel.from_bundle(backend.store.open(stored.name, stored.version))
    with requests_csv.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    rows = list(feature_rows(loaded.bundle.manifest.features, records))
    outcomes = _outcomes(stored, records)
    right = "label" if stored.manifest.is_classifier else "value"
    app = backend.model_app(loaded, ServingSettings())
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        single = client.post("/predict", json={"features": rows[0]})
        batch = client.post("/predict/batch", json={"instances": rows[1:]})
        answer: dict[str, Any] = single.json() if single.status_code == 200 else {}
        answered = batch.json()["predictions"] if batch.status_code == 200 else []
        items = [
            {"prediction_id": p["prediction_id"], "feedback_token": p["feedback_token"], right: o}
            for p, o in zip(answered[:FEEDBACK_ROWS], outcomes[1:], strict=False)
        ]
        accepted = client.post("/feedback", json={"feedback": items})
        # The single prediction's own id and token: refused for the outcome's kind alone.
        other = {
            "prediction_id": answer.get("prediction_id"),
            "feedback_token": answer.get("feedback_token"),
            **({"value": 1.0} if right == "label" else {"label": "high"}),
        }
        refused = client.post("/feedback", json={"feedback": [other]})
    return ServedTaskModel(
        stored=stored,
        runtime=loaded.predictor.runtime,
        batch_status=batch.status_code,
        batch_answers=len(answered),
        answer=answer,
        observed=outcomes[0],
        feedback_field=right,
        right_feedback=accepted.status_code,
        wrong_feedback=refused.status_code,
        wrong_detail=_first_error(refused),
    )


def _first_error(response: httpx.Response) -> str:
    """The refusal's first error as ``loc: msg`` (the API never echoes the values)."""
    try:
        first = response.json()["detail"][0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    except (ValueError, KeyError, IndexError, TypeError):
        return response.text[:80]


def _example(model: ServedTaskModel) -> str:
    answer = model.answer
    if not answer:
        return "-"
    if model.task == "regression":
        return f"prediction {answer['prediction']:.2f} (observed {model.observed:.2f})"
    probabilities = ", ".join(f"{k} {p:.2f}" for k, p in answer["probabilities"].items())
    return f"label {answer['label']} (observed {model.observed}); probabilities {probabilities}"


def _task_detail(manifest: Manifest) -> str:
    if manifest.is_classifier:
        return f"classes {', '.join(map(str, manifest.classes))}"
    span = manifest.target_range
    return f"target from {span.minimum:.2f} to {span.maximum:.2f}" if span else "regression"


def task_table(model: ServedTaskModel) -> Table:
    manifest = model.stored.manifest
    table = Table(
        title=f"{manifest.name} v{manifest.version}: {manifest.target}", show_header=False
    )
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("task", f"{manifest.task} ({_task_detail(manifest)})")
    params = manifest.estimator.params
    table.add_row(
        "estimator",
        f"{manifest.estimator.name} ({params.get('n_estimators')} trees, max depth "
        f"{params.get('max_depth')}); serving {model.runtime}",
    )
    for metric in METRICS[manifest.task]:
        table.add_row(f"holdout {metric}", f"{manifest.metrics[metric]:.4f}")
    table.add_row("batch", f"{model.batch_status}: {model.batch_answers} predictions")
    table.add_row("single answer", _example(model))
    table.add_row(
        "feedback",
        f"{FEEDBACK_ROWS} with a {model.feedback_field} → {model.right_feedback}; "
        f"1 with a {model.wrong_field} instead → {model.wrong_feedback} ({model.wrong_detail})",
    )
    return table


def _hyperparameters(spec: TaskSpec) -> dict[str, object]:
    return {
        "target": spec.target,
        "task": spec.task,
        "drop": list(spec.drop),
        "model_name": spec.name,
        "estimator": "random_forest",
        "n_estimators": TREES,
        "max_depth": MAX_DEPTH,
        "cv_folds": CV_FOLDS,
    }


def train_in_parallel(backend: LocalBackend, data: Path) -> list[StoredBundle]:
    """Both training jobs at once (each is a child process, as on SageMaker), one bar each."""
    with (
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar,
        ThreadPoolExecutor(max_workers=len(SPECS), thread_name_prefix="demo-train") as pool,
    ):

        def train(spec: TaskSpec) -> StoredBundle:
            task = bar.add_task(f"training {spec.name}", total=STAGES)

            def on_stage(stage: str) -> None:
                bar.update(task, advance=1, description=f"training {spec.name}: {stage}")

            return backend.train(data, _hyperparameters(spec), on_stage=on_stage)

        return list(pool.map(train, SPECS))


def run_tasks_chapter(backend: LocalBackend, *, seed: int) -> TasksChapter:
    """Train, serve and exercise one model per other task; print a table for each."""
    work = backend.root / "demo"
    work.mkdir(parents=True, exist_ok=True)
    train_csv = churn.write_churn_csv(work / "tasks-train.csv", TRAIN_ROWS, seed=seed)
    requests_csv = churn.write_churn_csv(work / "tasks-requests.csv", REQUEST_ROWS, seed=seed + 1)
    out.print(
        "service: which internet service a customer has (multiclass)\n"
        "charges: their monthly charges (regression; total_charges dropped, it is charges x "
        f"tenure)\n{TRAIN_ROWS} training rows → {train_csv.name}, {REQUEST_ROWS} request rows → "
        f"{requests_csv.name} in {work}",
        highlight=False,
    )
    models = []
    for stored in train_in_parallel(backend, train_csv):
        served = _serve(backend, stored, requests_csv)
        out.print(task_table(served))
        models.append(served)
    return TasksChapter(tuple(models))
