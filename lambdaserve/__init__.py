"""lambdaserve: a scikit-learn model from a training script to a guarded AWS Lambda API."""

__version__ = "0.1.0"
