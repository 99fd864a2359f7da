"""The one fake Lambda context of every tier: what Powertools, Mangum and our handlers read.

Standard library only, so a child interpreter with no site-packages can load it by path too
(``runpy.run_path(CONTEXT_FILE)["FakeLambdaContext"]``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

CONTEXT_FILE = Path(__file__).resolve()


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of ``LambdaContext`` that Powertools and Mangum read."""

    function_name: str = "lambdaserve-predict"
    function_version: str = "7"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:lambdaserve-predict:live"
    )
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/lambdaserve-predict"
    log_stream_name: str = "2026/11/26/[7]0123456789abcdef0123456789abcdef"
    remaining_millis: int = 29_000

    @classmethod
    def of(
        cls, function_name: str, *, function_version: str = "$LATEST", **changes: object
    ) -> FakeLambdaContext:
        """The context of another function: its ARN and log group follow its name."""
        return cls(
            function_name=function_name,
            function_version=function_version,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
            log_group_name=f"/aws/lambda/{function_name}",
            **changes,  # type: ignore[arg-type]
        )

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis
