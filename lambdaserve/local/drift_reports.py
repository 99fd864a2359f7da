"""Drift reports in the local store, laid out like the artifact bucket::

    <store>/drift-reports/<model>/<version>/<window_end:%Y-%m-%dT%H%M>.json   the report (commit)
    <store>/drift-reports/<model>/<version>/<window_end:%Y-%m-%dT%H%M>.html   its page

Create-only: a file is written in full to a temporary name in the same directory, then
hard-linked to its name. ``os.link`` fails when the name exists, so of two writers exactly one
wins, a reader never sees half a file, and nothing is ever rewritten. (On a file system without
hard links, ``open(..., "xb")`` gives the same create-only guarantee, without the atomicity.)
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path, PurePosixPath

_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK})


class LocalReportFiles:
    """Create-only files under ``root`` by ``/``-separated name (the ReportFiles port)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, name: str) -> Path:
        parts = PurePosixPath(name).parts
        if not parts or name.startswith("/") or any(p in {".", ".."} for p in parts):
            raise ValueError(f"{name!r} is not a relative report name")
        return self.root.joinpath(*parts)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def create(self, name: str, body: bytes, content_type: str) -> bool:
        """Write ``name`` unless it exists; False (and nothing changed) when it does."""
        target = self._path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                os.fchmod(stream.fileno(), 0o644)  # mkstemp's 0600 would hide reports from others
                stream.write(body)
                stream.flush()
                os.fsync(stream.fileno())
            os.link(temporary, target)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            return self._create_exclusive(target, body)
        finally:
            os.unlink(temporary)
        return True

    @staticmethod
    def _create_exclusive(target: Path, body: bytes) -> bool:
        try:
            with target.open("xb") as stream:
                stream.write(body)
        except FileExistsError:
            return False
        return True

    def read(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def names(self, prefix: str) -> list[str]:
        """Every file name under the directory ``prefix`` names, temporary files excluded."""
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )
