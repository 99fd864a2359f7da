"""Cold start of our Lambda entry point: import ``functions.predict.handler``, answer one event.

``python bench/cold_start_children/ours.py EVENT_JSON RESULT_JSON``, with the repository root as
the working directory and ``MODEL_URI`` naming the bundle. Importing the module builds the handler
(and loads the model), as Lambda's init phase does.
"""

import time

STARTED = time.perf_counter()


def main() -> None:
    import json
    import os
    import sys

    sys.path.insert(0, os.getcwd())
    from functions.predict.handler import lambda_handler

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
