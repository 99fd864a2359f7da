"""The model registry: its port, the promotion gate (pure), register/import use cases, MLflow."""
