"""Targets, the results table and ``bench/results/latest.json``.

Every check compares ours with a baseline measured in the same run; a MISS is reported, never
raised, because absolute timings depend on the machine. Informational rows hold the same target
against a variant baseline and show their verdict in parentheses.
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
    informational: bool = False

    @property
    def result(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        return f"({verdict.lower()})" if self.informational else verdict

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
            return f"{self.ratio:.2f}x faster" if self.ratio < 10 else f"{self.ratio:,.0f}x faster"
        if self.kind == "at_most":
            return f"{self.ratio:.3f}x"
        return f"{self.ratio:.2e}"


def at_most(
    name: str, ours: float, baseline: float, limit: float, unit: str, *, info: bool = False
) -> Check:
    ratio = ours / baseline
    return Check(name, _fmt(ours, unit), _fmt(baseline, unit), ratio, "at_most", limit, info)


def speedup(
    name: str, ours: float, baseline: float, limit: float, unit: str, *, info: bool = False
) -> Check:
    ratio = baseline / ours
    return Check(name, _fmt(ours, unit), _fmt(baseline, unit), ratio, "speedup", limit, info)


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
        [(c.name, c.ours, c.baseline, c.measured, c.target, c.result) for c in checks],
    )


def checks_json(checks: Sequence[Check]) -> list[dict[str, Any]]:
    return [{**asdict(c), "target": c.target, "result": c.result} for c in checks]


def write_results(
    results: dict[str, Any], directory: Path = RESULTS_DIR, name: str = "latest.json"
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
