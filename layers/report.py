"""What a layer build produced: size, file count, the largest packages, and what was stripped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from layers.budget import MB

TOP_PACKAGES = 8


@dataclass(frozen=True)
class LayerReport:
    name: str
    arch: str
    unzipped_bytes: int
    file_count: int
    largest_packages: tuple[tuple[str, int], ...]
    stripped_so_count: int
    notes: tuple[str, ...] = ()


def measure(site_dir: Path) -> tuple[int, int, tuple[tuple[str, int], ...]]:
    """Total bytes, file count and the largest top-level entries of ``site_dir``."""
    sizes: Counter[str] = Counter()
    count = 0
    for path in site_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            top = path.relative_to(site_dir).parts[0]
            sizes["*.dist-info" if top.endswith(".dist-info") else top] += path.stat().st_size
            count += 1
    return sum(sizes.values()), count, tuple(sizes.most_common(TOP_PACKAGES))


def format_report(reports: Iterable[LayerReport]) -> str:
    """A plain-text table, one row per layer, then its notes."""
    rows = [("layer", "arch", "MB", "files", "stripped .so", "largest packages (MB)")]
    notes: list[str] = []
    for report in reports:
        largest = ", ".join(f"{name} {size / MB:.1f}" for name, size in report.largest_packages)
        rows.append(
            (
                report.name,
                report.arch,
                f"{report.unzipped_bytes / MB:.1f}",
                str(report.file_count),
                str(report.stripped_so_count),
                largest,
            )
        )
        notes += [f"{report.name} ({report.arch}): {note}" for note in report.notes]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
    return "\n".join([*lines, *notes])
