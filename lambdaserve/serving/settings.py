"""Settings of the prediction service, read once from the environment."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Lambda's synchronous payload limit is 6 MB; stay under it with room for the event envelope.
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_BATCH_ROWS = 5000


class ServingSettings(BaseSettings):
    """Environment of the predict function (and of ``lambdaserve serve``)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    model_uri: str | None = Field(default=None, description="file:// path or s3:// URI of a bundle")
    model_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-fA-F]{64}$", description="sha256 of the bundle manifest"
    )
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    max_batch_rows: int = Field(default=DEFAULT_MAX_BATCH_ROWS, ge=1, le=100_000)
    bundle_cache_dir: Path = Path(tempfile.gettempdir()) / "lambdaserve-bundles"
    preferred_runtime: Literal["onnx", "sklearn"] | None = None
