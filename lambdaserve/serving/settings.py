"""Settings of the prediction service, read once from the environment."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lambdaserve.kernel.capture import CapturePolicy, parse_field_names
from lambdaserve.kernel.model_trust import ModelTrust

#: Lambda's synchronous payload limit is 6 MB; stay under it with room for the event envelope.
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_BATCH_ROWS = 5000

FieldNames = Annotated[frozenset[str], NoDecode]


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
    capture_enabled: bool = Field(default=True, description="one capture record per prediction")
    capture_mask: FieldNames = Field(
        default=frozenset(), description="features captured as null (comma-separated names)"
    )
    capture_hash: FieldNames = Field(
        default=frozenset(), description="features captured as a salted sha256 (comma-separated)"
    )
    capture_salt: SecretStr = Field(
        default=SecretStr(""), description="salt of the hashed features (local use)"
    )
    capture_salt_secret: str = Field(
        default="",
        description="Secrets Manager secret (ARN or name) holding the salt, from which the "
        "feedback token key is derived too; how Lambda gets both",
    )
    trusted_types: FieldNames = Field(
        default=frozenset(),
        description="types beyond lambdaserve's allow-list a scikit-learn model file may hold "
        "(comma-separated): the deployment's trust, never the artifact's",
    )
    code_dirs: FieldNames = Field(
        default=frozenset(),
        description="directories of the user's own model code (comma-separated): importable, and "
        "every type their top-level modules define is trusted",
    )
    api_base_path: str = Field(
        default="",
        pattern=r"^(/[A-Za-z0-9._-]+)*$",
        description="the API path before the app's routes (/models/<name> for a model of a "
        "stage's models mapping), stripped from every request on Lambda",
    )
    capture_policy_parameter: str = Field(
        default="",
        description="SSM parameter holding the stage's capture policy (enabled, mask, hash), "
        "re-read every minute; on Lambda it replaces CAPTURE_MASK/CAPTURE_HASH so a change "
        "reaches versions already published",
    )

    _field_names = field_validator(
        "capture_mask", "capture_hash", "trusted_types", "code_dirs", mode="before"
    )(parse_field_names)

    def model_trust(self) -> ModelTrust:
        return ModelTrust.from_settings(self.trusted_types, sorted(self.code_dirs))

    @model_validator(mode="after")
    def _hashing_is_salted(self) -> Self:
        salted = self.capture_salt.get_secret_value() or self.capture_salt_secret
        if self.capture_hash and not salted:
            # Unsalted sha256 of an e-mail or a customer id is reversed by trying candidates.
            raise ValueError(
                "CAPTURE_HASH needs CAPTURE_SALT or CAPTURE_SALT_SECRET: unsalted hashes can be "
                "reversed"
            )
        if self.capture_policy_parameter and not self.capture_salt_secret:
            raise ValueError(
                "CAPTURE_POLICY_PARAMETER needs CAPTURE_SALT_SECRET: the policy may hash fields"
            )
        return self

    def capture_policy(self, salt: str | None = None) -> CapturePolicy:
        """The capture policy; ``salt`` is the one read from ``capture_salt_secret``."""
        return CapturePolicy(
            enabled=self.capture_enabled,
            mask=self.capture_mask,
            hash=self.capture_hash,
            salt=salt if salt is not None else self.capture_salt.get_secret_value(),
        )
