"""Training on the terminal: a progress bar over the job's stages (or a spinner over the user's
script, its output passed through) and the bundle's summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lambdaserve.kernel.artifacts import StoredBundle
from lambdaserve.views.console import err, out
from lambdaserve.wiring.local import LocalBackend

STAGES = 8  # load, clean, cross-validate, fit, evaluate, export ONNX, write bundle, done


@contextmanager
def training_progress(name: str, *, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A transient bar on stderr; yields the job's ``on_stage`` callback."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not enabled,
        transient=True,
    ) as bar:
        task = bar.add_task(f"training {name}", total=STAGES)

        def on_stage(stage: str) -> None:
            bar.update(task, advance=1, description=f"training {name}: {stage}")

        yield on_stage


def train_model(
    backend: LocalBackend, data: Path, hyperparameters: dict[str, object], *, progress: bool
) -> StoredBundle:
    """Train locally into the backend's store, with the progress bar when ``progress``."""
    with training_progress(str(hyperparameters["model_name"]), enabled=progress) as on_stage:
        return backend.train(data, hyperparameters, on_stage=on_stage)


@contextmanager
def script_progress(script: Path, *, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A transient spinner on stderr; yields ``on_output``, which prints each line the script
    writes (on stderr, as SageMaker streams a job's log) when ``enabled``."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        disable=not enabled,
        transient=True,
    ) as bar:
        bar.add_task(f"running your script {script.name}", total=None)
        prefix = f"[dim]{escape(script.name)} |[/] "

        def on_output(line: str) -> None:
            if enabled:
                bar.console.print(prefix + escape(line.rstrip("\n")), highlight=False)

        yield on_output


def train_script_model(
    backend: LocalBackend,
    script: Path,
    data: Path,
    hyperparameters: dict[str, object],
    *,
    source_dir: Path | None,
    progress: bool,
) -> StoredBundle:
    """Run the user's script into the backend's store, its output shown when ``progress``."""
    with script_progress(script, enabled=progress) as on_output:
        return backend.train_script(
            script, data, hyperparameters, source_dir=source_dir, on_output=on_output
        )


def summary(stored: StoredBundle) -> dict[str, object]:
    manifest = stored.manifest
    return {
        "name": stored.name,
        "version": stored.version,
        "bundle_uri": stored.uri,
        "bundle_sha256": stored.digest,
        "task": manifest.task,
        "classes": list(manifest.classes),
        "target_range": manifest.target_range.model_dump() if manifest.target_range else None,
        "runtime": manifest.preferred_runtime,
        "estimator": manifest.estimator.name,
        "metrics": manifest.metrics,
        "onnx": manifest.onnx.model_dump(exclude_none=True),
        "coercions": [c.model_dump() for c in manifest.data.coercions],
        "dropped_columns": list(manifest.data.dropped_columns),
    }


def print_summary(stored: StoredBundle) -> None:
    manifest = stored.manifest
    table = Table(title=f"{stored.name} version {stored.version} ({manifest.preferred_runtime})")
    table.add_column("holdout metric")
    table.add_column("value", justify="right")
    table.add_column("cv mean ± std", justify="right")
    for metric, value in manifest.metrics.items():
        cv = manifest.cv_metrics.get(metric)
        table.add_row(metric, f"{value:.4f}", f"{cv.mean:.4f} ± {cv.std:.4f}" if cv else "")
    out.print(table)
    for coercion in manifest.data.coercions:
        out.print(f"  [yellow]coerced[/] {coercion.column}: {coercion.message}", highlight=False)
    if manifest.onnx.status != "ok":
        out.print(
            f"  ONNX: {manifest.onnx.status} ({manifest.onnx.reason}); serving uses scikit-learn"
        )
    out.print(f"  bundle: {stored.uri}\n  sha256: {stored.digest}")
