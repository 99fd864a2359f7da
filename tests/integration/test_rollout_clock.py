"""Every controller of a rollout measures holds on one clock: S3's, read from the ``Date`` of
the state's responses (a laptop 31 minutes fast skipped a 30-minute hold measured on the clock of
whichever machine ticked). Served by a loopback server whose clock is a year behind ours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lambdaserve.aws.s3_rollout_state import S3RolloutState
from tests.integration.loopback_s3 import answering_s3

pytestmark = pytest.mark.integration
SERVER_TIME = datetime(2025, 12, 3, 6, 0, tzinfo=UTC)


def test_the_rollout_clock_is_s3s_not_this_machines() -> None:
    with answering_s3(404, "NoSuchKey", date=SERVER_TIME) as client:
        states = S3RolloutState("state-bucket", client=client)
        assert abs(states.now() - datetime.now(UTC)) < timedelta(minutes=1)  # nothing read yet

        assert states.load("churn") is None

    assert abs(states.now() - SERVER_TIME) < timedelta(seconds=5)
    earlier = states.now()
    assert states.now() >= earlier  # it advances on this machine's monotonic clock
