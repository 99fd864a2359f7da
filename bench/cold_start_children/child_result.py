"""What every cold-start child writes when it is done (imported only after the timed part)."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``).

    ``getrusage(RUSAGE_SELF).ru_maxrss`` is no good here: Linux carries the maximum over ``execve``,
    so a child reports at least the RSS its parent had when it forked.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def write_result(
    *, started: float, ready: float, answered: float, answered_epoch: float, response: Any
) -> None:
    """Timings (ms, from the child's first line), peak RSS and the answer, to ``argv[2]``."""
    body = json.loads(response["body"])
    result = {
        "status": response["statusCode"],
        "probability": body.get("probability"),
        "ready_ms": (ready - started) * 1000,
        "first_event_ms": (answered - ready) * 1000,
        "in_child_ms": (answered - started) * 1000,
        "answered_epoch": answered_epoch,
        "peak_rss_mb": peak_rss_mb(),
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "modules": len(sys.modules),
    }
    Path(sys.argv[2]).write_text(json.dumps(result))
