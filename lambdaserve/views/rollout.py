"""A rollout's timeline as a terminal table (the rollout commands and the demo)."""

from __future__ import annotations

from rich.table import Table

from lambdaserve.rollout.state import RolloutState


def timeline_table(state: RolloutState) -> Table:
    table = Table(
        title=f"{state.model_name}: {state.plan.kind} v{state.champion.model_version} → "
        f"v{state.challenger.model_version} ({state.status})"
    )
    for column in ("time (UTC)", "action", "challenger share", "reason"):
        table.add_column(column)
    for event in state.history:
        table.add_row(
            event.at.strftime("%H:%M:%S"), event.action, f"{event.weight:.0%}", event.reason
        )
    return table
