"""The local backend of the guard port: the rollout step's signals from the gateway request log."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from lambdaserve.kernel.errors import RolloutError
from lambdaserve.local.request_log import signals_since
from lambdaserve.rollout.guard import GuardPolicy, GuardReport, evaluate_signals
from lambdaserve.rollout.state import RolloutState


class LocalGuard:
    """Compares the challenger with the champion over the current step (``step_started_at`` to
    ``now``), reading what the local gateway recorded for each function version."""

    def __init__(
        self, root: Path, function_name: str = "predict", policy: GuardPolicy | None = None
    ) -> None:
        self.root = Path(root)
        self.function_name = function_name
        self.policy = policy or GuardPolicy()

    def evaluate(self, state: RolloutState, now: datetime) -> GuardReport:
        if state.function_name != self.function_name:
            raise RolloutError(
                f"the rollout of {state.model_name} drives function {state.function_name}, but "
                f"this guard reads the request log of function {self.function_name}"
            )
        champion = state.champion.function_version
        challenger = state.challenger.function_version
        signals = signals_since(
            self.root, self.function_name, state.step_started_at, (champion, challenger), until=now
        )
        return evaluate_signals(signals[champion], signals[challenger], self.policy)

    def release(self, state: RolloutState) -> None:
        """Nothing to remove: this guard computes its signals from the request log on every
        evaluation and creates nothing."""
