"""moto's server on 127.0.0.1 with an ephemeral port, and the S3 and Lambda bits integration tests
share.

Import with ``from tests.integration.moto_server import ...`` and wrap ``running_moto_server`` in a
fixture of the scope the test module needs.
"""

from __future__ import annotations

import io
import json
import socket
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.server import ThreadedMotoServer


@contextmanager
def running_moto_server() -> Iterator[str]:
    """Start moto on loopback; yield its endpoint URL; stop it afterwards."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def new_bucket(s3: Any, *, versioning: str | None = "Enabled") -> str:
    """Create a uniquely named bucket; ``versioning`` None leaves versioning never enabled."""
    bucket = f"lambdaserve-test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    if versioning is not None:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})
    return bucket


def object_versions(s3: Any, bucket: str) -> list[tuple[str, str]]:
    """Every (key, version id) in the bucket, delete markers included, sorted."""
    response = s3.list_object_versions(Bucket=bucket)
    entries = [*response.get("Versions", []), *response.get("DeleteMarkers", [])]
    return sorted((entry["Key"], entry["VersionId"]) for entry in entries)


def closed_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def lambda_role(iam: Any, name: str) -> str:
    """A role Lambda may assume (moto checks that a function's role exists); its ARN."""
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
    return str(role["Role"]["Arn"])


def handler_zip() -> bytes:
    """A minimal function package (moto stores code; it never runs it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()
