"""Where a SageMaker training container finds its inputs and puts its outputs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SageMakerPaths:
    train_channel: Path
    model_dir: Path
    output_data_dir: Path
    output_dir: Path

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SageMakerPaths:
        env = os.environ if environ is None else environ
        output_dir = Path(env.get("SM_OUTPUT_DIR", "/opt/ml/output"))
        return cls(
            train_channel=Path(env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")),
            model_dir=Path(env.get("SM_MODEL_DIR", "/opt/ml/model")),
            output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR", str(output_dir / "data"))),
            output_dir=output_dir,
        )

    def as_environ(self) -> dict[str, str]:
        return {
            "SM_CHANNEL_TRAIN": str(self.train_channel),
            "SM_MODEL_DIR": str(self.model_dir),
            "SM_OUTPUT_DATA_DIR": str(self.output_data_dir),
            "SM_OUTPUT_DIR": str(self.output_dir),
        }
