"""The shared kernel: bundle and manifest, feature schema, predictors, ids, encoding, capture
records, errors, metric names and the artifact and function ports. Imports nothing else of ours."""
