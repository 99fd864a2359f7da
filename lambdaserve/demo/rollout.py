"""The demo's rollout chapter: a canary of the v2 challenger under load that the guard lets
through and promotes, then a deliberately bad v3 (it requires a feature the traffic never sends)
that the guard rolls back. Prints both timelines. The load also reports each prediction's true
outcome (POST /feedback, in batches), so the chapter ends with the A/B report of v2 against v1
on ground truth."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from lambdaserve.abtest.report import ABReport, ab_report, split_stream
from lambdaserve.datasets import churn
from lambdaserve.kernel.manifest import ClassLabel
from lambdaserve.registry.code_version import code_version
from lambdaserve.registry.holdout_scoring import Holdout
from lambdaserve.registry.promotion_gate import GatePolicy
from lambdaserve.registry.registration import gate_challenger, register_bundle
from lambdaserve.rollout import use_cases as rollouts
from lambdaserve.rollout.plan import RolloutPlan
from lambdaserve.rollout.publishing import publish_model_version
from lambdaserve.rollout.state import RolloutState
from lambdaserve.rollout.use_cases import RolloutContext
from lambdaserve.serving.background_server import serve_in_thread
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.views.abtest import print_ab_report
from lambdaserve.views.console import out
from lambdaserve.views.rollout import timeline_table
from lambdaserve.views.training import train_model
from lambdaserve.wiring.local import LocalBackend

FUNCTION = "predict"
BAD_FEATURE = "loyalty_points"
FEEDBACK_BATCH = 50


@dataclass
class Load:
    """Background traffic through the gateway, counted by the version that served it; every
    successful prediction's true outcome is sent back through POST /feedback in batches."""

    url: str
    rows: list[dict[str, object]]
    outcomes: list[ClassLabel]
    served: Counter[str] = field(default_factory=Counter)
    feedback_sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rng = random.Random(7)  # noqa: S311 - demo traffic, not security
        pending: list[dict[str, object]] = []
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                index = rng.randrange(len(self.rows))
                response = client.post(
                    "/predict",
                    json={"features": self.rows[index]},
                    headers={"X-Unit-Id": f"customer-{rng.randrange(10**6)}"},
                )
                version = response.headers.get("x-function-version", "?")
                self.served[f"{version} {response.status_code}"] += 1
                if response.status_code == 200:
                    answer = response.json()
                    pending.append(
                        {
                            "prediction_id": answer["prediction_id"],
                            "label": self.outcomes[index],
                            "feedback_token": answer["feedback_token"],
                        }
                    )
                if len(pending) >= FEEDBACK_BATCH:
                    self._send_feedback(client, pending)
            self._send_feedback(client, pending)

    def _send_feedback(self, client: httpx.Client, pending: list[dict[str, object]]) -> None:
        if pending:
            response = client.post("/feedback", json={"feedback": pending})
            if response.status_code == 202:
                self.feedback_sent += len(pending)
            pending.clear()


def _drive(context: RolloutContext, name: str, plan: RolloutPlan, timeout: float) -> RolloutState:
    state = rollouts.start_rollout(context, name, plan)
    deadline = time.monotonic() + timeout
    while not state.finished and time.monotonic() < deadline:
        time.sleep(0.5)
        state = rollouts.advance(context, name)
    return state


def _bad_v3(backend: LocalBackend, train_csv: Path, holdout: Holdout) -> str:
    """A model that needs a column production traffic never sends: every request it gets is a
    422. It is forced past the gate (recorded as forced) so the rollout guard has to catch it."""
    frame = pd.read_csv(train_csv, dtype=str, keep_default_na=False)
    frame[BAD_FEATURE] = np.random.default_rng(3).integers(0, 500, len(frame)).astype(str)
    bad_csv = train_csv.with_name("churn-train-v3.csv")
    frame.to_csv(bad_csv, index=False)
    store, registry = backend.store, backend.registry
    stored = train_model(
        backend,
        bad_csv,
        {
            "target": churn.TARGET,
            "drop": [churn.ID_COLUMN],
            "model_name": "churn",
            "estimator": "random_forest",
            "n_estimators": 40,
        },
        progress=True,
    )
    version, _ = register_bundle(
        registry, store, stored.name, stored.version, code_version=code_version()
    )
    gate_challenger(registry, store, version, policy=GatePolicy(), holdout=holdout, force=True)
    publish_model_version(
        registry,
        store,
        store,
        backend.functions(FUNCTION),
        "churn",
        version.version,
        function_name=FUNCTION,
    )
    return version.version


@dataclass(frozen=True)
class RolloutChapter:
    good: RolloutState
    bad: RolloutState
    ab: ABReport


def run_rollout_chapter(
    backend: LocalBackend,
    train_csv: Path,
    holdout_csv: Path,
    traffic: list[dict[str, object]],
    outcomes: list[ClassLabel],
    *,
    interval: float = 2.0,
    min_samples: int = 40,
) -> RolloutChapter:
    context = backend.rollout_context(FUNCTION, clock=lambda: datetime.now(UTC))
    settings = ServingSettings()
    started = datetime.now(UTC)
    with serve_in_thread(backend.gateway(FUNCTION, settings)) as url:
        load = Load(url, traffic, outcomes)
        worker = threading.Thread(target=load.run, daemon=True)
        worker.start()
        try:
            out.print(
                f"gateway at {url}; canary of the challenger, 20% for {interval:.0f}s "
                f"and at least {min_samples} challenger requests, under load"
            )
            good = _drive(context, "churn", RolloutPlan.canary(0.2, interval, min_samples), 120)
            out.print(timeline_table(good))
            out.print("training a deliberately bad v3 (it needs a feature traffic never sends)")
            bad_version = _bad_v3(backend, train_csv, Holdout.read(holdout_csv))
            out.print(f"canary of v{bad_version}: the guard should roll it back")
            bad = _drive(context, "churn", RolloutPlan.canary(0.2, interval, min_samples), 120)
            out.print(timeline_table(bad))
        finally:
            load.stop.set()
            worker.join(timeout=10)
    out.print(
        "requests served by function version and status: "
        + json.dumps(dict(sorted(load.served.items())))
        + f"; {load.feedback_sent} outcomes sent to POST /feedback",
        highlight=False,
    )
    until = datetime.now(UTC) + timedelta(seconds=1)
    captures, feedback = split_stream(
        backend.capture_stream(started, until, model="churn"), started, until
    )
    manifest = backend.store.get("churn").manifest
    report = ab_report(
        "churn",
        captures,
        feedback,
        task=manifest.task,
        classes=manifest.classes,
        positive_class=manifest.positive_class,
        baseline=good.champion.bundle_version or None,
    )
    print_ab_report(report)
    return RolloutChapter(good, bad, report)
