"""Where drift reports are kept: ``drift-reports/<model>/<version>/<window end>.json`` and its
``.html`` page, create-only, over a ``ReportFiles`` port (a local directory or an S3 bucket)."""

from __future__ import annotations

from typing import Protocol

from lambdaserve.drift.html import render_html
from lambdaserve.drift.report import REPORT_PREFIX, DriftReport, ReportKey
from lambdaserve.kernel.artifacts import version_order


class ReportFiles(Protocol):
    """Create-only files by name (a local directory or an S3 bucket)."""

    def exists(self, name: str) -> bool: ...

    def create(self, name: str, body: bytes, content_type: str) -> bool:
        """Write ``name`` unless it exists; False (and nothing changed) when it does."""
        ...

    def read(self, name: str) -> bytes | None: ...

    def names(self, prefix: str) -> list[str]:
        """Every name under ``prefix`` (a ``/``-separated path)."""
        ...


class DriftReportStore:
    """Reports as ``<stem>.json`` (the commit) and ``<stem>.html``, both create-only.

    The page is written first; the JSON commits the report. A page left by an earlier attempt
    that failed before committing is kept: it was drawn from the same window.
    """

    def __init__(self, files: ReportFiles) -> None:
        self.files = files

    def exists(self, key: ReportKey) -> bool:
        return self.files.exists(f"{key.stem}.json")

    def put(self, report: DriftReport) -> bool:
        """Store the report unless one exists for its key; True when this call wrote it."""
        stem = report.key.stem
        self.files.create(f"{stem}.html", render_html(report).encode(), "text/html; charset=utf-8")
        body = report.model_dump_json(indent=1).encode()
        return self.files.create(f"{stem}.json", body, "application/json")

    def get(self, key: ReportKey) -> DriftReport | None:
        raw = self.files.read(f"{key.stem}.json")
        return None if raw is None else DriftReport.model_validate_json(raw)

    def html(self, key: ReportKey) -> bytes | None:
        return self.files.read(f"{key.stem}.html")

    def list_keys(
        self, model_name: str | None = None, model_version: str | None = None
    ) -> list[ReportKey]:
        """Stored report keys, oldest window first."""
        prefix = "/".join(p for p in (REPORT_PREFIX, model_name, model_version) if p)
        keys = (ReportKey.parse(name) for name in self.files.names(f"{prefix}/"))
        found = [k for k in keys if k is not None]
        return sorted(
            found, key=lambda k: (k.window_end, k.model_name, version_order(k.model_version))
        )
