"""A drift report as one self-contained HTML page: a summary table and, per feature, an inline
SVG bar chart of reference vs window proportions per bin. No scripts, no external assets; every
string that comes from data (feature names, categories, messages) goes through ``html.escape``.
"""

from __future__ import annotations

from html import escape

from lambdaserve.drift.report import BinCounts, DriftReport
from lambdaserve.drift.statistics import DriftResult

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1f2933}
table{border-collapse:collapse;margin:1em 0}td,th{padding:3px 10px;border-bottom:1px solid #d9dee3;
text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.drift{color:#b42318;font-weight:600}.no_drift{color:#1a7f37}.insufficient_data{color:#6b7280}
section{margin:1.5em 0}.chart{overflow-x:auto}.legend span{display:inline-block;width:10px;
height:10px;margin:0 4px 0 12px}
"""
_REFERENCE_COLOUR = "#9aa5b1"
_WINDOW_COLOUR = {"drift": "#d92d20", "no_drift": "#2e90fa", "insufficient_data": "#98a2b3"}
_BAR, _GAP, _HEIGHT, _LABELS = 11, 9, 120, 100
_LEFT = 80  # room for the first bins' labels, which slant down to the left
_MAX_LABEL = 22


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _row(result: DriftResult, name: str) -> str:
    cells = (
        f"<td>{_e(name)}</td><td>{_e(result.test)}</td>"
        f'<td class="n">{_score(result.score)}</td><td class="n">{result.threshold:g}</td>'
        f'<td class="{_e(result.verdict)}">{_e(result.verdict)}</td>'
        f'<td class="n">{_score(result.p_value)}</td>'
        f'<td class="n">{result.reference_count}</td><td class="n">{result.window_count}</td>'
    )
    return f"<tr>{cells}</tr>"


def _proportions(counts: tuple[int, ...]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def bar_chart(bins: BinCounts, verdict: str) -> str:
    """Grouped bars (reference, window) per bin, scaled to the largest proportion shown."""
    reference, window = _proportions(bins.reference), _proportions(bins.window)
    top = max([*reference, *window, 1e-9])
    step = 2 * _BAR + _GAP
    width = _LEFT + step * len(bins.labels)
    colour = _WINDOW_COLOUR.get(verdict, _WINDOW_COLOUR["insufficient_data"])
    parts = []
    for index, label in enumerate(bins.labels):
        x = _LEFT + index * step
        for offset, share, fill, side in (
            (0, reference[index], _REFERENCE_COLOUR, "reference"),
            (_BAR, window[index], colour, "window"),
        ):
            height = share / top * _HEIGHT
            parts.append(
                f'<rect x="{x + offset}" y="{_HEIGHT - height:.1f}" width="{_BAR}" '
                f'height="{height:.1f}" fill="{fill}"><title>{_e(label)}: {side} '
                f"{share:.1%}</title></rect>"
            )
        short = label if len(label) <= _MAX_LABEL else f"{label[: _MAX_LABEL - 1]}…"
        parts.append(
            f'<text x="{x + _BAR}" y="{_HEIGHT + 12}" font-size="10" text-anchor="end" '
            f'transform="rotate(-45 {x + _BAR} {_HEIGHT + 12})">{_e(short)}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_HEIGHT + _LABELS}" '
        f'role="img"><line x1="0" y1="{_HEIGHT}" x2="{width}" y2="{_HEIGHT}" stroke="#d9dee3"/>'
        f"{''.join(parts)}</svg>"
    )


def _section(result: DriftResult, name: str, bins: BinCounts | None) -> str:
    chart = f'<div class="chart">{bar_chart(bins, result.verdict)}</div>' if bins else ""
    return (
        f'<section><h2>{_e(name)} <span class="{_e(result.verdict)}">{_e(result.verdict)}</span>'
        f"</h2><p>{_e(result.message)}</p>{chart}</section>"
    )


def _facts(report: DriftReport) -> list[str]:
    dataset = report.dataset
    persistence = report.persistence
    history = ", ".join("-" if h is None else ("drift" if h else "ok") for h in persistence.history)
    facts = [
        f'dataset verdict: <span class="{_e(dataset.verdict)}">{_e(dataset.verdict)}</span> '
        f"({len(dataset.drifted_features)} of {dataset.tested} tested features drifted; "
        f"drift when at least {dataset.share:.0%} do)",
        f"drifted (FDR {report.fdr_alpha:g}, chi-square + Benjamini-Hochberg): "
        f"{_e(', '.join(report.fdr_drifted) or 'none')}",
        f"persistent (dataset drift in {persistence.k} of the last {persistence.n} windows): "
        f"{'yes' if report.persistent else 'no'} (history, oldest first: {_e(history)}); "
        f"features drifted in {persistence.k} of {persistence.n}: "
        f"{_e(', '.join(persistence.features) or 'none')}",
        *(f"skipped {_e(s.feature)}: {_e(s.reason)}" for s in report.skipped),
        *(_e(note) for note in report.notes),
    ]
    return [f"<li>{fact}</li>" for fact in facts]


def render_html(report: DriftReport) -> str:
    """The whole page (UTF-8, no external references)."""
    title = f"Drift: {report.model_name} v{report.model_version}, window ending {report.window_end}"
    header = (
        "<tr><th>feature</th><th>test</th><th>score</th><th>threshold</th><th>verdict</th>"
        "<th>chi-square p</th><th>reference n</th><th>window n</th></tr>"
    )
    rows = "".join(_row(r, report.display_name(r.feature)) for r in report.results)
    legend = (
        '<p class="legend">proportion per bin:<span style="background:'
        f'{_REFERENCE_COLOUR}"></span>reference<span style="background:'
        f'{_WINDOW_COLOUR["no_drift"]}"></span>window</p>'
    )
    return "".join(
        [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{_e(title)}</h1>",
            f"<p>window {_e(report.window_start.isoformat())} to "
            f"{_e(report.window_end.isoformat())} "
            f"(scheduled {_e(report.scheduled_time.isoformat())}), "
            f"{report.rows} predictions, minimum {report.min_samples} per test; generated "
            f"{_e(report.generated_at.isoformat())}</p>",
            f"<ul>{''.join(_facts(report))}</ul>",
            f"<table>{header}{rows}</table>",
            legend,
            *(
                _section(r, report.display_name(r.feature), report.bins.get(r.feature))
                for r in report.results
            ),
            "</body></html>\n",
        ]
    )
