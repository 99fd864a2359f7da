"""Run by ``.venv-checkov/bin/python`` (never imported by the app): checkov's CloudFormation
runner on the templates named on the command line, one JSON object per finding on stdout.

checkov pins boto3, botocore, packaging and networkx below the project's pins, so it lives in an
environment of its own (resolved in uv.lock as the ``checkov`` group; the Makefile installs it),
and this file imports only checkov and the standard library. Its Python API answers in about a
second after a 2.4 s import, against 4.5 s for the ``checkov`` command per configuration.
``infra.checkov_acknowledgements`` runs it and matches what it prints against the table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from checkov.cloudformation.runner import Runner
from checkov.runner_filter import RunnerFilter


def main(paths: list[str]) -> int:
    report = Runner().run(
        root_folder=None,
        files=[str(Path(path).resolve()) for path in paths],
        runner_filter=RunnerFilter(framework=["cloudformation"]),
    )
    # A check skipped by a resource's own Metadata (checkov: skip:) is a finding too: every
    # acknowledgement lives in the table, with its reason.
    for outcome, records in (("failed", report.failed_checks), ("skipped", report.skipped_checks)):
        for record in records:
            line = {
                "outcome": outcome,
                "file": record.file_abs_path,
                "resource": record.resource,
                "check_id": record.check_id,
                "check_name": record.check_name,
            }
            print(json.dumps(line))
    for error in report.parsing_errors:
        print(json.dumps({"outcome": "unparsed", "file": str(error)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
