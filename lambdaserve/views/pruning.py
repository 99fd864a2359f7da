"""Pruning's report as a terminal table (``lambdaserve prune``) and as the one line a rollout
command prints after it pruned."""

from __future__ import annotations

from rich.table import Table

from lambdaserve.rollout.prune_report import PruneReport


def prune_table(report: PruneReport) -> Table:
    """Every published version of the function, oldest first: kept (and why), deleted (in a
    dry run: would be deleted) or skipped (and why)."""
    gone = "would delete" if report.dry_run else "deleted"
    rows = [
        (k.function_version, k.model_version, "kept", ", ".join(k.reasons)) for k in report.kept
    ]
    rows += [
        (d.function_version, d.model_version, gone, f"older than the {report.keep} newest")
        for d in report.deleted
    ]
    rows += [(s.function_version, None, "skipped", s.reason) for s in report.skipped]
    title = f"{report.model_name}: published versions of {report.function_name}"
    table = Table(title=f"{title} (dry run)" if report.dry_run else title)
    for column in ("function version", "model version", "action", "why"):
        table.add_column(column)
    for version, model, action, why in sorted(rows, key=lambda row: int(row[0])):
        table.add_row(version, model or "-", action, why)
    return table


def prune_summary(report: PruneReport) -> str:
    """One line: what went and what stays."""
    kept = ", ".join(k.function_version for k in report.kept) or "none"
    deleted = [d.function_version for d in report.deleted]
    head = (
        f"pruned version(s) {', '.join(deleted)} of {report.function_name}"
        if deleted
        else f"no old versions of {report.function_name} to prune"
    )
    skipped = "".join(f"; kept {s.function_version}: {s.reason}" for s in report.skipped)
    return f"{head} (kept {kept}; --keep-versions {report.keep}){skipped}"


def untagged_note(report: PruneReport) -> str | None:
    """Which registry versions no longer count as published (None: none)."""
    if not report.untagged:
        return None
    versions = ", ".join(f"v{v}" for v in report.untagged)
    verb = "would no longer be" if report.dry_run else "are no longer"
    return (
        f"registry: {report.model_name} {versions} {verb} recorded as published (their function "
        f"version is gone); `lambdaserve publish {report.model_name}:VERSION` publishes one again"
    )
