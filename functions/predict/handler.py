"""Lambda entry point of the prediction API: ``functions/predict/handler.py:lambda_handler``.

Configured by the environment (``MODEL_URI``, optional ``MODEL_SHA256``; see ServingSettings).
"""

from lambdaserve.wiring.aws_predict import build_lambda_handler

lambda_handler = build_lambda_handler()
