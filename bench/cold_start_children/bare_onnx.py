"""The floor for an ONNX-served function (``bench/lambda_bare/bare_onnx_handler.py``: onnxruntime
+ numpy, ``model.onnx``), answering one event in a fresh process.

``python bench/cold_start_children/bare_onnx.py EVENT_JSON RESULT_JSON`` with ``MODEL_URI`` set.
"""

import time

STARTED = time.perf_counter()


def main() -> None:
    import json
    import os
    import sys

    sys.path.insert(0, os.getcwd())
    # The same floor the emulated benchmark runs as a task root: its session is built on import.
    from bench.lambda_bare.bare_onnx_handler import lambda_handler

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
