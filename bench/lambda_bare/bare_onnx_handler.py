"""The floor for an ONNX-served Lambda function, as a task root of one file: onnxruntime and
numpy from the onnx layer, ``model.onnx`` loaded at init, one event or a batch per invocation.

No framework, validation, hash checks, logging, metrics or capture: json-parse the body, feed
the session, return a proxy response. The session gets the same options as ours (one intra- and
inter-op thread). ``MODEL_URI`` is the bundle directory."""

import json
import os

import numpy as np
import onnxruntime as ort

_options = ort.SessionOptions()
_options.intra_op_num_threads = 1
_options.inter_op_num_threads = 1
_session = ort.InferenceSession(
    os.path.join(os.environ["MODEL_URI"], "model.onnx"),
    sess_options=_options,
    providers=["CPUExecutionProvider"],
)
_inputs = [(i.name, i.type == "tensor(float)") for i in _session.get_inputs()]


def _feeds(rows):
    feeds = {}
    for name, numeric in _inputs:
        values = [row[name] for row in rows]
        if numeric:
            column = [np.nan if v is None else v for v in values]
            feeds[name] = np.array(column, dtype=np.float32).reshape(-1, 1)
        else:
            column = ["__missing__" if v is None else v for v in values]
            feeds[name] = np.array(column, dtype=object).reshape(-1, 1)
    return feeds


def lambda_handler(event, context):
    body = json.loads(event["body"])
    rows = body["instances"] if "instances" in body else [body["features"]]
    (probabilities,) = _session.run(["probabilities"], _feeds(rows))
    answers = [{"probability": float(p)} for p in probabilities[:, 1]]
    result = {"predictions": answers} if "instances" in body else answers[0]
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(result),
    }
