"""Cold start of the naive baseline (bench.naive_service): pandas + scikit-learn + skops.

``python bench/cold_start_children/naive.py EVENT_JSON RESULT_JSON``, with the repository root as
the working directory and ``MODEL_URI`` naming the bundle directory.
"""

import time

STARTED = time.perf_counter()


def main() -> None:
    import json
    import os
    import sys
    from pathlib import Path

    sys.path.insert(0, os.getcwd())
    from bench.naive_service import build_naive_handler

    lambda_handler = build_naive_handler(Path(os.environ["MODEL_URI"]))
    ready = time.perf_counter()
    from bench.events import FakeLambdaContext

    with open(sys.argv[1]) as handle:
        event = json.load(handle)
    response = lambda_handler(event, FakeLambdaContext())
    answered, answered_epoch = time.perf_counter(), time.time()

    from bench.cold_start_children.child_result import write_result

    write_result(
        started=STARTED,
        ready=ready,
        answered=answered,
        answered_epoch=answered_epoch,
        response=response,
    )


if __name__ == "__main__":
    main()
