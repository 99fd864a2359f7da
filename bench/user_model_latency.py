"""A user's own pipeline through ``save_model`` and our full Lambda handler, against the user's
own call of the same fitted model measured in the same run.

``python -m bench.user_model_latency``

The model is what a notebook holds (palmerpenguins, sex from the other columns): a
``ColumnTransformer`` with a median imputer and a scaler on the numbers and a most-frequent
imputer and a one-hot encoder on the text columns, then ``HistGradientBoostingClassifier``. skl2onnx
does not convert it (a string imputer on NaN), so the bundle is served by scikit-learn from a
DataFrame rebuilt with the fitted dtypes: the path this measures.

Baseline: what a hand-written FastAPI service does per request, minus its web framework:
``pd.DataFrame(rows)`` from the JSON rows, then ``model.predict_proba``. Ours: the API Gateway
event through ``build_lambda_handler`` (Mangum, FastAPI, request validation, Powertools metrics,
capture on). Single: p50 of 1000 calls over 50 rows after 50 warm-up calls; batch: p50 of 50
calls of 1000 rows after 3. Calls are interleaved, ours then the baseline, so a slow spell of a
shared machine lands on both.

Targets: ours at most 1.5x the baseline for one row (the handler's fixed cost over a
scikit-learn pipeline's ~1 ms) and 1.2x for 1000 rows; served probabilities equal the user's
within 1e-12. A MISS is reported, never raised.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from palmerpenguins import load_penguins
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

import lambdaserve
from bench import report
from bench.events import batch_event, predict_event
from bench.report import Check, absolute, at_most
from bench.warm_latency import Latency, ours_handler
from tests.support.lambda_context import FakeLambdaContext
from tests.support.penguins import json_row, user_pipeline

SINGLE_ROWS, SINGLE_CALLS, BATCH_ROWS, BATCH_CALLS = 50, 1000, 1000, 50
SINGLE_LIMIT, BATCH_LIMIT, PARITY_LIMIT = 1.5, 1.2, 1e-12


def user_model() -> tuple[Pipeline, pd.DataFrame]:
    frame = load_penguins().dropna(subset=["sex"])
    x, y = frame.drop(columns=["sex"]), frame["sex"]
    return user_pipeline(estimator=HistGradientBoostingClassifier()).fit(x, y), x


def json_rows(x: pd.DataFrame, n: int, seed: int) -> list[dict[str, Any]]:
    sample = x.sample(n, replace=True, random_state=seed)
    return [json_row(row) for _, row in sample.iterrows()]


def interleaved(
    ours: Callable[[Any], Any],
    baseline: Callable[[Any], Any],
    inputs: Sequence[Any],
    *,
    iterations: int,
    warmup: int,
) -> tuple[list[float], list[float]]:
    """Milliseconds per call of ours and of the baseline, one of each in turn on one input
    (Powertools' metric lines and our capture lines go to /dev/null, as a log shipper takes
    them)."""
    samples: tuple[list[float], list[float]] = ([], [])
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for index in range(warmup + iterations):
            item = inputs[index % len(inputs)]
            for which, call in enumerate((ours, baseline)):
                started = time.perf_counter()
                call(item)
                if index >= warmup:
                    samples[which].append((time.perf_counter() - started) * 1000)
    return samples


def run() -> list[Check]:
    model, x = user_model()
    with tempfile.TemporaryDirectory(prefix="bench-user-model-") as tmp:
        bundle = lambdaserve.save_model(model, Path(tmp) / "bundle", name="penguins", X=x)
        assert bundle.manifest.preferred_runtime == "sklearn", bundle.manifest.onnx
        handler = ours_handler(bundle.path)
        context = FakeLambdaContext()

        def ours(event: dict[str, Any]) -> dict[str, Any]:
            return handler(event, context)

        def user(rows: list[dict[str, Any]]) -> np.ndarray:
            return model.predict_proba(pd.DataFrame(rows, columns=list(x.columns)))

        singles = json_rows(x, SINGLE_ROWS, seed=1)
        single = interleaved(
            lambda r: ours(predict_event(r)),
            lambda r: user([r]),
            singles,
            iterations=SINGLE_CALLS,
            warmup=50,
        )
        batches = [json_rows(x, BATCH_ROWS, seed=s) for s in (2, 3)]
        batch = interleaved(
            lambda rows: ours(batch_event(rows)), user, batches, iterations=BATCH_CALLS, warmup=3
        )
        parity = _parity(ours(batch_event(batches[0])), user(batches[0]))
    ours_single, user_single = (Latency.of(s).p50_ms for s in single)
    ours_batch, user_batch = (Latency.of(s).p50_ms for s in batch)
    return [
        at_most("single p50", ours_single, user_single, SINGLE_LIMIT, "ms"),
        at_most("1000-row batch p50", ours_batch, user_batch, BATCH_LIMIT, "ms"),
        absolute("max |served - user's| probability", parity, PARITY_LIMIT),
    ]


def _parity(response: dict[str, Any], expected: np.ndarray) -> float:
    assert response["statusCode"] == 200, response["body"]
    served = [p["probability"] for p in json.loads(response["body"])["predictions"]]
    return float(np.max(np.abs(np.asarray(served) - expected[:, 1])))


def main() -> int:
    checks = run()
    print(__doc__.split("\n\n")[0])
    print(report.checks_table(checks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
