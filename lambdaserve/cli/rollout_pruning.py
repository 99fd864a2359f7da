"""What the commands that end a rollout print after it: the pruning of old function versions
(``--keep-versions`` / ``$LAMBDASERVE_KEEP_VERSIONS``), or a warning when it failed. Nothing
at all when no keep count is set."""

from __future__ import annotations

from rich.markup import escape

from lambdaserve.rollout import use_cases as rollouts
from lambdaserve.rollout.state import RolloutState
from lambdaserve.rollout.use_cases import RolloutContext
from lambdaserve.views.console import err, out
from lambdaserve.views.pruning import prune_summary, untagged_note


def prune_after(context: RolloutContext, state: RolloutState, keep: int | None) -> None:
    """Prune once ``state`` ended promoted or rolled back; a failure is a warning (the
    rollout's outcome and exit code stand)."""
    after = rollouts.prune_after(context, state, keep)
    if after is None:
        return
    if after.report is not None:
        out.print(prune_summary(after.report), highlight=False)
        note = untagged_note(after.report)
        if note:
            out.print(note, highlight=False)
    if after.warning is not None:
        err.print(f"[bold yellow]warning:[/] {escape(after.warning)}", highlight=False)
