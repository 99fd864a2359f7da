"""Build the Lambda dependency layers and the predict function asset without Docker.

``python -m layers.build_layer NAME [NAME ...] --arch arm64 --out DIR``; the CDK app calls
:func:`layers.build_layer.build_layer` from local bundling. Never imported by runtime code.
"""
