"""Every checkov acknowledgement in one place, each with its specific reason.

checkov scans the synthesized templates (``infra/checkov_scan.py``, in its own environment) and
names each finding by check ID and ``TYPE.LogicalId``; the cloud assembly beside the templates
maps the logical ID back to the construct path, so each entry below names the construct(s) it
covers, as ``infra/nag_suppressions.py`` does, and a regular expression for the check IDs it
accepts. ``check_templates`` returns the findings nobody has explained (``make synth`` and the
infra tests fail on any) and which entry explained each of the others (the tests fail on an
entry that explains nothing in any of their configurations).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.checkov_findings import Finding, scan
from infra.config import stage_prefix


@dataclass(frozen=True)
class Acknowledgement:
    path: str
    """Construct path below the app, with ``{prefix}`` for the stage prefix (a regex)."""
    checks: str
    """Regular expression the whole check ID must match."""
    reason: str


TABLE = "infra/checkov_acknowledgements.py"
_FUNCTIONS = (
    r"{prefix}-(serving/(Model[A-Za-z0-9]+/)?Predict|serving/Rollout/Function"
    r"|monitoring/Drift/Function)"
)

ACKNOWLEDGEMENTS: tuple[Acknowledgement, ...] = (
    Acknowledgement(
        r"{prefix}-serving/(Model[A-Za-z0-9]+/)?Predict/Resource",
        r"CKV_AWS_116",
        "API Gateway's Lambda proxy integration invokes the live alias synchronously, and "
        "nothing invokes it asynchronously: a failed prediction is the caller's error response "
        "(a 5xx it may retry), there is no queued event a dead-letter queue could keep.",
    ),
    Acknowledgement(
        r"{prefix}-serving/Rollout/Function/Resource",
        r"CKV_AWS_116",
        "The rollout state machine invokes the step synchronously (LambdaInvoke, "
        "RequestResponse): a failed step is retried by the state machine (throttling, "
        "RetryableStepError), then caught and failed, which the ExecutionsFailed alarm reports; "
        "the rollout state itself is durable in S3.",
    ),
    Acknowledgement(
        r"{prefix}-monitoring/Drift/Function/Resource",
        r"CKV_AWS_116",
        "The drift function's asynchronous invocation config sends a run that failed every "
        "retry, or outlived its maximum event age, to its on-failure destination, the "
        "Drift/DeadLetters queue (which the schedule's DeadLetterConfig also uses and an alarm "
        "watches); a DeadLetterConfig as well would deliver each failed run there twice.",
    ),
    Acknowledgement(
        rf"{_FUNCTIONS}/Resource",
        r"CKV_AWS_117",
        "The functions reach only public AWS APIs (S3, Secrets Manager, SSM, Lambda, "
        "CloudWatch, SNS, X-Ray) over TLS with SigV4, and no private resource; a VPC would add a "
        "NAT gateway or one interface endpoint per service in every AZ (hourly charges) without "
        "narrowing what they can reach, which their least-privilege roles already bound.",
    ),
    Acknowledgement(
        rf"{_FUNCTIONS}/Resource",
        r"CKV_AWS_173",
        "The environments hold names, ARNs, limits and the pinned bundle's URI and sha256, never "
        "a secret (the capture salt stays in Secrets Manager), and Lambda encrypts them at rest "
        "with its AWS managed key; a customer-managed key would make every `lambdaserve publish` "
        "(which sets MODEL_URI and MODEL_SHA256) need KMS grants for values that anyone with "
        "lambda:GetFunctionConfiguration reads in clear anyway.",
    ),
    Acknowledgement(
        r"{prefix}-serving/PredictApi/Api/DeploymentStage\.[a-z0-9-]+/Resource",
        r"CKV_AWS_120",
        "Responses must never come from a cache: each prediction carries a fresh prediction_id "
        "and is captured for drift and feedback, and GET /model and /health must say what the "
        "live alias serves now, not before a rollout shifted it.",
    ),
    Acknowledgement(
        r"{prefix}-storage/CaptureSalt/Resource",
        r"CKV_AWS_149",
        "Only the predict role may read the capture secret (GetSecretValue on its ARN); with "
        "the AWS managed key Secrets Manager decrypts for exactly the principals IAM lets read "
        "it, as a customer-managed key with the account's default key policy would; such a key "
        "is needed to share a secret across accounts, which this one never is.",
    ),
    Acknowledgement(
        r"{prefix}-storage/AccessLogs/Resource",
        r"CKV_AWS_18",
        "This is the bucket that receives the artifact and capture buckets' server access logs; "
        "logging it into itself would log every log delivery again, and another log bucket "
        "would only move the finding one bucket down. It is private, TLS-only, versioned and "
        "retained, and its objects expire after a year.",
    ),
    Acknowledgement(
        r"{prefix}-monitoring/Drift/DeadLetters/Resource",
        r"CKV_AWS_27",
        "The queue is encrypted at rest with SSE-SQS (SqsManagedSseEnabled); checkov accepts "
        "only a KMS key. It holds a failed drift run's scheduled time and Lambda's error record, "
        "no capture or feature value, and a customer-managed key would need grants to the "
        "scheduler's and the function's roles for no narrower access.",
    ),
)


@dataclass(frozen=True)
class CheckovResult:
    unacknowledged: tuple[Finding, ...]
    acknowledged: tuple[tuple[Finding, Acknowledgement], ...]

    @property
    def used(self) -> set[Acknowledgement]:
        return {ack for _, ack in self.acknowledged}


def acknowledgement_for(
    finding: Finding, prefix: str, table: Sequence[Acknowledgement] = ACKNOWLEDGEMENTS
) -> Acknowledgement | None:
    """The entry that explains ``finding``; None for a check a template skipped on its own."""
    if finding.skipped:
        return None
    for ack in table:
        path = ack.path.replace("{prefix}", re.escape(prefix))
        if re.fullmatch(path, finding.path) and re.fullmatch(ack.checks, finding.check_id):
            return ack
    return None


def check_templates(paths: Iterable[Path], prefix: str) -> CheckovResult:
    """Run checkov on ``paths`` (the templates of the stage whose prefix is ``prefix``)."""
    unacknowledged: list[Finding] = []
    acknowledged: list[tuple[Finding, Acknowledgement]] = []
    for finding in scan(paths):
        ack = acknowledgement_for(finding, prefix)
        if ack is None:
            unacknowledged.append(finding)
        else:
            acknowledged.append((finding, ack))
    return CheckovResult(tuple(unacknowledged), tuple(acknowledged))


def stale(results: Iterable[CheckovResult]) -> list[Acknowledgement]:
    """The entries that explained nothing in any of ``results``."""
    used = set().union(*(result.used for result in results))
    return [ack for ack in ACKNOWLEDGEMENTS if ack not in used]


def main(argv: Sequence[str] | None = None) -> int:
    """``make synth``: fail on any finding the table does not explain."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, help="the stage synthesized")
    parser.add_argument("templates", nargs="+", type=Path)
    args = parser.parse_args(argv)
    result = check_templates(args.templates, stage_prefix(args.stage))
    for finding in result.unacknowledged:
        print(f"checkov: unacknowledged {finding} (explain it in {TABLE})", file=sys.stderr)
    print(
        f"checkov: {len(result.acknowledged)} acknowledged, "
        f"{len(result.unacknowledged)} unacknowledged finding(s)"
    )
    return 1 if result.unacknowledged else 0


if __name__ == "__main__":
    sys.exit(main())
