"""Targets, the results table and ``bench/results/latest.json``.

Every check compares ours with a baseline measured in the same run; a MISS is reported, never
raised, because absolute timings depend on the machine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Check:
    """One target: ``ratio`` is ours/baseline ("at_most") or baseline/ours ("speedup")."""

    name: str
    ours: str
    baseline: str
    ratio: float
    kind: Literal["at_most", "speedup", "absolute"]
    limit: float

    @property
    def passed(self) -> bool:
        return self.ratio >= self.limit if self.kind == "speedup" else self.ratio <= self.limit

    @property
    def target(self) -> str:
        if self.kind == "speedup":
            return f">= {self.limit:g}x faster"
        if self.kind == "at_most":
            return f"<= {self.limit:g}x baseline"
        return f"<= {self.limit:g}"

    @property
    def measured(self) -> str:
        if self.kind == "speedup":
            return f"{self.ratio:,.1f}x faster"
        if self.kind == "at_most":
            return f"{self.ratio:.3f}x"
        return f"{self.ratio:.2e}"


def at_most(name: str, ours: float, baseline: float, limit: float, unit: str) -> Check:
    return Check(name, _fmt(ours, unit), _fmt(baseline, unit), ours / baseline, "at_most", limit)


def speedup(name: str, ours: float, baseline: float, limit: float, unit: str) -> Check:
    return Check(name, _fmt(ours, unit), _fmt(baseline, unit), baseline / ours, "speedup", limit)


def absolute(name: str, value: float, limit: float) -> Check:
    return Check(name, f"{value:.2e}", "-", value, "absolute", limit)


def _fmt(value: float, unit: str) -> str:
    return f"{value:,.3g} {unit}" if value < 100 else f"{value:,.0f} {unit}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def checks_table(checks: Sequence[Check]) -> str:
    return table(
        ("check", "ours", "baseline", "measured", "target", "result"),
        [
            (c.name, c.ours, c.baseline, c.measured, c.target, "PASS" if c.passed else "MISS")
            for c in checks
        ],
    )


def checks_json(checks: Sequence[Check]) -> list[dict[str, Any]]:
    return [
        {**asdict(c), "target": c.target, "result": "PASS" if c.passed else "MISS"} for c in checks
    ]


def write_results(results: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "latest.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
