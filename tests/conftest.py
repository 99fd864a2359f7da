"""Shared fixtures: trained bundles (built once per session), fake AWS credentials, API Gateway
events and the fake Lambda context (both from ``tests/support``)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from lambdaserve.datasets import churn
from lambdaserve.kernel.bundle import VerifiedBundle
from lambdaserve.views import console
from tests.support import events
from tests.support.bundles import train_bundle, trained_once
from tests.support.lambda_context import FakeLambdaContext

# No test may reach real AWS: fake credentials, a fixed region, no instance metadata lookups.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ[_key] = _value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("LAMBDASERVE_REGISTRY_URI", None)
# Rich wraps messages to the terminal's width (80 without one), and where a long temporary path
# falls decides where a sentence breaks: tests read the CLI's messages unwrapped.
console.out.width = console.err.width = 1000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """The predict function's context (a new request id each test)."""
    return FakeLambdaContext()


@pytest.fixture
def make_event() -> events.MakeEvent:
    """``make_event(name, payload=None, *, raw=None, declare_length=False)``: an event of
    ``tests/events/``; ``payload`` is JSON-encoded into the body, ``raw`` used verbatim."""
    return events.make_event


@pytest.fixture(scope="session")
def churn_frame() -> pd.DataFrame:
    return churn.generate_churn(3000, seed=0)


@pytest.fixture(scope="session")
def churn_bundle(
    tmp_path_factory: pytest.TempPathFactory, churn_frame: pd.DataFrame
) -> VerifiedBundle:
    """A random forest on dirty churn data: ONNX-served, numeric and categorical features.
    Trained once per run (``trained_once``), shared by every worker."""
    return trained_once(
        tmp_path_factory,
        "churn",
        lambda root: train_bundle(
            root,
            churn_frame,
            target=churn.TARGET,
            drop=[churn.ID_COLUMN],
            model_name="churn",
            model_version="1",
        ),
    )


@pytest.fixture(scope="session")
def churn_hgb_bundle(
    tmp_path_factory: pytest.TempPathFactory, churn_frame: pd.DataFrame
) -> VerifiedBundle:
    """Histogram gradient boosting: skl2onnx cannot convert it here, so scikit-learn serves it.
    Trained once per run, like ``churn_bundle``."""
    return trained_once(
        tmp_path_factory,
        "churn-hgb",
        lambda root: train_bundle(
            root,
            churn_frame,
            target=churn.TARGET,
            drop=[churn.ID_COLUMN],
            model_name="churn",
            model_version="2",
            estimator="hist_gradient_boosting",
            max_iter=50,
        ),
    )


@pytest.fixture(scope="session")
def cancer_frame() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture
def bundle_copy(tmp_path: Path, churn_bundle: VerifiedBundle) -> Path:
    """A writable copy of the churn bundle directory, for tampering."""
    import shutil

    target = tmp_path / "bundle"
    shutil.copytree(churn_bundle.path, target)
    return target
