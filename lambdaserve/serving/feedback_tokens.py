"""Feedback tokens: proof that a ``prediction_id`` was served, checked without a lookup.

Every prediction answers a ``feedback_token``: the first 128 bits of HMAC-SHA256 over the model
name and the prediction id, under a key every version of the model shares. ``POST /feedback``
stores an outcome only when its token matches, so made-up ids are refused at the door (nothing
is looked up, nothing forged is stored) and a token answered by one model does not label
another's prediction.

The key is derived (HMAC with a fixed label, so it is never the secret itself) from the stage's
capture secret on AWS (``CAPTURE_SALT_SECRET``, read once per execution environment) and from a
key file kept in the local store (``<store>/feedback.key``, created on first use, mode 0600).
"""

from __future__ import annotations

import base64
import hmac
import secrets

_LABEL = b"lambdaserve/feedback-token/v1"
_TOKEN_BYTES = 16
#: What a token looks like: 128 bits, base64url without padding.
FEEDBACK_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{22}$"  # noqa: S105 - a pattern, not a secret


class FeedbackSigner:
    """Makes and checks the feedback tokens of one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a feedback token key needs at least 128 bits")
        self._key = key

    @classmethod
    def from_secret(cls, secret: str) -> FeedbackSigner:
        """The signer of a stage secret (domain-separated: tokens never reveal the salt)."""
        if not secret:
            raise ValueError("an empty secret cannot sign feedback tokens")
        return cls(hmac.digest(secret.encode(), _LABEL, "sha256"))

    @classmethod
    def ephemeral(cls) -> FeedbackSigner:
        """A random key: its tokens verify only against this signer (one process)."""
        return cls(secrets.token_bytes(32))

    def token(self, model_name: str, prediction_id: str) -> str:
        mac = hmac.digest(self._key, f"{model_name}\0{prediction_id}".encode(), "sha256")
        return base64.urlsafe_b64encode(mac[:_TOKEN_BYTES]).rstrip(b"=").decode()

    def tokens(self, model_name: str, prediction_ids: list[str]) -> list[str]:
        return [self.token(model_name, prediction_id) for prediction_id in prediction_ids]

    def verify(self, model_name: str, prediction_id: str, token: str) -> bool:
        """Whether ``token`` is the one answered with ``prediction_id`` by ``model_name``
        (compared in constant time)."""
        return hmac.compare_digest(self.token(model_name, prediction_id), token)
