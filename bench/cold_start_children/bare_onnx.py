"""The floor for an ONNX-served function: onnxruntime + numpy, ``model.onnx``, one event.

No framework, validation, hash checks, logging or metrics: json-parse the body, feed the session,
return a proxy response. The session gets the same options as ours (one intra/inter-op thread).
``python bench/cold_start_children/bare_onnx.py EVENT_JSON RESULT_JSON`` with ``MODEL_URI`` set.
"""

import time

STARTED = time.perf_counter()


def main() -> None:
    import json
    import os
    import sys

    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        os.path.join(os.environ["MODEL_URI"], "model.onnx"),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )
    inputs = [(i.name, i.type == "tensor(float)") for i in session.get_inputs()]

    def lambda_handler(event: dict, context: object) -> dict:
        features = json.loads(event["body"])["features"]
        feeds = {}
        for name, numeric in inputs:
            value = features[name]
            if numeric:
                feeds[name] = np.array([[np.nan if value is None else value]], dtype=np.float32)
            else:
                feeds[name] = np.array([["__missing__" if value is None else value]], dtype=object)
        (probabilities,) = session.run(["probabilities"], feeds)
        body = json.dumps({"probability": float(probabilities[0, 1])})
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body}

    ready = time.perf_counter()
    sys.path.insert(0, os.getcwd())
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
