"""lambdaserve: a scikit-learn model from a training script to a guarded AWS Lambda API.

``lambdaserve.save_model(model, path, name=..., X=...)`` turns any fitted scikit-learn model into
a verified bundle (``lambdaserve.training.saving``). It is imported on first use, so importing
``lambdaserve`` (as every Lambda function does) loads neither scikit-learn nor pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["save_model"]

if TYPE_CHECKING:
    from lambdaserve.training.saving import save_model


def __getattr__(name: str) -> Any:
    if name == "save_model":
        # By name: the Lambda assets are import closures, and this is for users' machines.
        return importlib.import_module("lambdaserve.training.saving").save_model
    raise AttributeError(f"module 'lambdaserve' has no attribute {name!r}")
