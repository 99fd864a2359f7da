"""SnapStart's runtime hooks: registered by the predict handler only in the init SnapStart
snapshots, run in the order Lambda's runtime runs them (awslambdaric's hooks runner), and two
environments restored from one snapshot (two forks of one process) make distinct ids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.serving.settings import ServingSettings
from lambdaserve.wiring.aws_predict import build_lambda_handler
from lambdaserve.wiring.snapstart_hooks import reference_row
from tests.support.events import make_event

pytestmark = pytest.mark.integration

#: A snapshot, then two restores: the parent builds the handler (SnapStart's init), runs the
#: before-snapshot hooks, makes an id (the snapshot's generator state), then forks twice; each
#: child is a restored environment that makes an id in the snapshot's millisecond, after the
#: after-restore hooks or (the control) without them.
SCRIPT = """
import json, os, sys
from awslambdaric.lambda_runtime_hooks_runner import run_after_restore, run_before_snapshot
from snapshot_restore_py import get_after_restore, get_before_snapshot
from lambdaserve.kernel import prediction_ids
from lambdaserve.wiring.aws_predict import build_lambda_handler

handler = build_lambda_handler()
registered = {
    "before": [f.__name__ for f, _, _ in get_before_snapshot()],
    "after": [f.__name__ for f, _, _ in get_after_restore()],
}
run_before_snapshot()
snapshot_ms = 1_900_000_000_000
prediction_ids.new_prediction_id(snapshot_ms)
restore = sys.argv[1] == "hooks"
reader, writer = os.pipe()
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        if restore:
            run_after_restore()
        os.write(writer, (prediction_ids.new_prediction_id(snapshot_ms) + "\\n").encode())
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
os.close(writer)
ids = os.read(reader, 4096).decode().split()
print(json.dumps({"registered": registered, "ids": ids}))
"""


def _restored(bundle: VerifiedBundle, tmp_path: Path, mode: str, init_type: str) -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "MODEL_URI": bundle.path.as_uri(),
        "BUNDLE_CACHE_DIR": str(tmp_path / "cache"),
        "CAPTURE_ENABLED": "false",
        "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
        "POWERTOOLS_METRICS_NAMESPACE": "test",
        "AWS_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_two_restored_environments_make_distinct_ids(
    churn_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    restored = _restored(churn_bundle, tmp_path, "hooks", "snap-start")

    assert restored["registered"] == {"before": ["warm_up"], "after": ["after_restore"]}
    first, second = restored["ids"]
    assert first != second


def test_without_the_after_restore_hook_restored_environments_collide(
    churn_bundle: VerifiedBundle, tmp_path: Path
) -> None:
    """The control: the hooks are what makes the ids distinct, not luck."""
    restored = _restored(churn_bundle, tmp_path, "no-hooks", "snap-start")

    first, second = restored["ids"]
    assert first == second


def test_an_on_demand_init_registers_no_hooks(churn_bundle: VerifiedBundle, tmp_path: Path) -> None:
    restored = _restored(churn_bundle, tmp_path, "no-hooks", "on-demand")

    assert restored["registered"] == {"before": [], "after": []}


def test_the_warm_up_row_is_one_the_api_accepts(
    churn_bundle: VerifiedBundle, tmp_path: Path, lambda_context: object
) -> None:
    """The before-snapshot prediction uses a row the model's schema validates."""
    handler = build_lambda_handler(
        ServingSettings(model_uri=churn_bundle.path.as_uri(), bundle_cache_dir=tmp_path)
    )
    row = reference_row(churn_bundle.manifest.features)
    answer = handler(make_event("rest_api_post_predict", {"features": row}), lambda_context)
    assert answer["statusCode"] == 200, answer["body"]
