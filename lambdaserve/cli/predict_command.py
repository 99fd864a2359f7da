"""``lambdaserve predict``: send the rows of a CSV file to a running prediction API."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import Progress

from lambdaserve.kernel.csv_rows import feature_rows
from lambdaserve.kernel.schema import FeatureSchema
from lambdaserve.views.console import err, fail, out


def _refusal(response: httpx.Response, offset: int, shown: int = 5) -> str:
    """Name the CSV rows and columns the API refused (the API never echoes values)."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError):
        return f"the API answered {response.status_code}: {response.text[:300]}"
    if not isinstance(detail, list):
        return f"the API answered {response.status_code}: {detail}"
    lines = []
    for problem in detail[:shown]:
        loc = problem.get("loc", [])
        if len(loc) >= 4 and loc[1] == "instances":
            # Data rows are numbered from 1, after the header line.
            lines.append(f"row {offset + int(loc[2]) + 1}, column {loc[3]!r}: {problem['msg']}")
        else:
            lines.append(f"{'.'.join(map(str, loc))}: {problem['msg']}")
    more = f" (and {len(detail) - shown} more)" if len(detail) > shown else ""
    return f"the API refused the batch ({response.status_code}):\n  " + "\n  ".join(lines) + more


def predict(
    data: Annotated[Path, typer.Option("--data", help="CSV file with the feature columns")],
    url: Annotated[
        str, typer.Option("--url", help="Base URL of the API")
    ] = "http://127.0.0.1:8080",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=5000)] = 500,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write predictions as JSON lines")
    ] = None,
) -> None:
    """Score every row of a CSV file through POST /predict/batch; extra columns are ignored."""
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            described = client.get("/model")
            if described.status_code != 200:
                fail(f"{url}/model answered {described.status_code}: {described.text[:300]}")
            description = described.json()
            schema = FeatureSchema.model_validate({"features": description["features"]})
            with data.open(newline="") as handle:
                rows = list(feature_rows(schema, csv.DictReader(handle)))
            predictions: list[dict[str, Any]] = []
            with Progress(console=err, transient=True) as bar:
                task = bar.add_task("predicting", total=len(rows))
                for start in range(0, len(rows), batch_size):
                    chunk = rows[start : start + batch_size]
                    response = client.post("/predict/batch", json={"instances": chunk})
                    if response.status_code != 200:
                        fail(_refusal(response, start))
                    predictions.extend(response.json()["predictions"])
                    bar.advance(task, len(chunk))
    except httpx.HTTPError as exc:
        fail(f"could not reach {url}: {exc}")
    except OSError as exc:
        fail(f"could not read {data}: {exc}")
    if output is not None:
        output.write_text("".join(json.dumps(p) + "\n" for p in predictions))
    out.print(
        f"{len(predictions)} predictions, {_summary(description, predictions)}"
        + (f"; written to {output}" if output else "")
    )


def _summary(description: dict[str, Any], predictions: list[dict[str, Any]]) -> str:
    """What the predictions say at a glance, per task: how many got the positive class, how
    many each class, or the predictions' range."""
    if description.get("task") == "regression":
        values = [float(p["prediction"]) for p in predictions]
        return f"predicted {min(values):.4g} to {max(values):.4g}" if values else "none"
    if description.get("task") == "multiclass_classification":
        counts = Counter(str(p["label"]) for p in predictions)
        return ", ".join(f"{count} {label!r}" for label, count in counts.most_common())
    positive = description["positive_class"]
    positives = sum(1 for p in predictions if p["label"] == positive)
    return f"{positives} labelled {positive!r}"
