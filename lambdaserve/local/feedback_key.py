"""The local store's feedback token key: ``<store>/feedback.key``, made once, readable by its
owner only, shared by every version the store serves (so a token answered by version 1 still
verifies after a restart or at version 2, as the stage secret makes it on AWS)."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.serving.feedback_tokens import FeedbackSigner

KEY_FILE = "feedback.key"


def local_feedback_signer(root: Path) -> FeedbackSigner:
    """The store's signer, creating its key (64 hex characters) the first time."""
    path = Path(root) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written aside, then linked into place: os.link fails if the key exists, so of two
        # processes starting together one key wins and neither reads a half-written file.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".feedback-key-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    text = path.read_text().strip()
    try:
        return FeedbackSigner(bytes.fromhex(text))
    except ValueError as exc:
        raise LambdaserveError(
            f"{path} is not a feedback key (64 hex characters); delete it to make a new one "
            "(tokens answered before then stop verifying)"
        ) from exc
