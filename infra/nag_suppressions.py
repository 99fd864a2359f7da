"""Every cdk-nag (AwsSolutions) acknowledgement in one place, each with its specific reason.

cdk-nag 3 matches acknowledgements by exact finding ID, and many IDs embed generated names
(``AwsSolutions-IAM5[Resource::<PredictLogsA640170C.Arn>:*]``, cross-stack export names). So each
entry below names the construct it covers and a regular expression for the findings it accepts;
``synth_with_nag`` synthesizes once (which resolves cross-stack references), runs the pack,
acknowledges exactly the matching findings on exactly those constructs, then synthesizes again
with the pack as a validation plugin, which fails on anything nobody has explained. A new
resource, or a new wildcard on a covered policy, still fails synthesis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


@dataclass(frozen=True)
class Acknowledgement:
    path: str
    """Construct path below the app, with ``{prefix}`` for the stage prefix (a regex)."""
    findings: str
    """Regular expression the whole finding ID must match."""
    reason: str


_ACCOUNT = r"(?:<AWS::AccountId>|\d{12})"
_PARTITION = r"(?:aws|<AWS::Partition>)"


def _ids(*patterns: str) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


ACKNOWLEDGEMENTS: tuple[Acknowledgement, ...] = (
    Acknowledgement(
        r"{prefix}-storage/CaptureSalt/Resource",
        r"AwsSolutions-SMG4",
        "The capture salt keys the salted sha256 of capture_hash fields so equal values stay "
        "equal across captures; rotating it would make every hashed value incomparable with "
        "those captured before. It is retained, read only by the predict role (GetSecretValue on "
        "this ARN) and never logged or put in an environment.",
    ),
    Acknowledgement(
        r"{prefix}-serving/(Model[A-Za-z0-9]+/)?Predict/Resource",
        r"AwsSolutions-L1",
        "DESIGN decision 1 pins python3.13 (the version tests and the layer build use); moving to "
        "a newer runtime is a deliberate change with its own layer rebuild and tests.",
    ),
    Acknowledgement(
        r"{prefix}-serving/(Model[A-Za-z0-9]+/)?PredictRole/DefaultPolicy/Resource",
        _ids(
            re.escape("AwsSolutions-IAM5[Resource::*]"),
            r"AwsSolutions-IAM5\[Resource::<(Model[A-Za-z0-9]+)?PredictLogs[0-9A-F]+\.Arn>:\*\]",
            r"AwsSolutions-IAM5\[Resource::.*Artifacts.*/models/[A-Za-z0-9._-]+/\*\]",
        ),
        "X-Ray PutTraceSegments/PutTelemetryRecords accept no resource ARN (Resource::*); log "
        "streams are created inside the function's own log group (<log group ARN>:*); bundles "
        "are read under models/<model>/ of the function's own model only, whose keys are per "
        "model version and unknown at deploy time.",
    ),
    Acknowledgement(
        r"{prefix}-serving/PredictApi/Api/CloudWatchRole/Resource",
        re.escape(
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]"
        ),
        "API Gateway's account-level logging role: AmazonAPIGatewayPushToCloudWatchLogs is the "
        "policy AWS documents for it and lets API Gateway write only its own logs.",
    ),
    Acknowledgement(
        r"{prefix}-serving/PredictApi/Api/Default/.+/(GET|POST)/Resource",
        r"AwsSolutions-COG4",
        "auth_mode 'iam' (the default) authorizes every method with SigV4 IAM authorization "
        "(AWS_IAM); auth_mode 'cognito' puts a Cognito user pool authorizer on every method.",
    ),
    Acknowledgement(
        r"{prefix}-serving/PredictApi/Api/DeploymentStage\.[a-z0-9-]+/Resource",
        r"AwsSolutions-APIG3",
        "Only reported for stages configured with waf: false (the default attaches a WAFv2 web "
        "ACL with AWS managed rules); that stage's owner chose to run without WAF, e.g. a "
        "private test stage behind IAM authorization.",
    ),
    Acknowledgement(
        r"{prefix}-serving/Rollout/Function/Resource",
        r"AwsSolutions-L1",
        "The rollout function runs the same controller code as the CLI and imports the "
        "serving-base layer built for python3.13 (DESIGN decision 1); its runtime moves together "
        "with the predict function's, in one deliberate change.",
    ),
    Acknowledgement(
        r"{prefix}-serving/Rollout/Role/DefaultPolicy/Resource",
        _ids(
            re.escape("AwsSolutions-IAM5[Resource::*]"),
            r"AwsSolutions-IAM5\[Resource::<RolloutFunctionLogs[0-9A-F]+\.Arn>:\*\]",
            rf"AwsSolutions-IAM5\[Resource::arn:{_PARTITION}:cloudwatch:[a-z0-9-]+:{_ACCOUNT}:"
            r"alarm:<(Model[A-Za-z0-9]+)?Predict[0-9A-F]+>-v\*\]",
            r"AwsSolutions-IAM5\[Resource::.*Artifacts.*/rollouts/\*\]",
            r"AwsSolutions-IAM5\[Resource::<(Model[A-Za-z0-9]+)?Predict[0-9A-F]+\.Arn>:\*\]",
        ),
        "X-Ray trace writes and cloudwatch:GetMetricStatistics accept no resource ARN, and "
        "cloudwatch:DescribeAlarms (read-only) returns composite guard alarms only when granted "
        "on Resource::*; log streams are created in the function's own log group; the guard "
        "creates one alarm per challenger version (<predict function>-v<N>-...), "
        "named at rollout time; rollout state is one object per model under rollouts/; "
        "pruning deletes a predict function's published versions by their qualified ARNs "
        "(<function ARN>:<version>), numbered at publish time.",
    ),
    Acknowledgement(
        r"{prefix}-serving/Rollout/MachineRole/DefaultPolicy/Resource",
        _ids(
            r"AwsSolutions-IAM5\[Resource::<RolloutFunction[0-9A-F]+\.Arn>:\*\]",
            re.escape("AwsSolutions-IAM5[Resource::*]"),
        ),
        "Written by the CDK LambdaInvoke task and state machine: invoking the rollout function "
        "also covers its qualified ARNs (<function ARN>:*), and the CloudWatch Logs delivery "
        "and X-Ray APIs used for execution logging and tracing accept no resource ARN.",
    ),
    Acknowledgement(
        r"{prefix}-monitoring/Drift/Function/Resource",
        r"AwsSolutions-L1",
        "The drift function imports the serving-base and drift (SciPy) layers built for "
        "python3.13 (DESIGN decision 1), like the predict and rollout functions; the three move "
        "to a newer runtime together, with their layers rebuilt, in one deliberate change.",
    ),
    Acknowledgement(
        r"{prefix}-monitoring/Drift/Role/DefaultPolicy/Resource",
        _ids(
            re.escape("AwsSolutions-IAM5[Resource::*]"),
            r"AwsSolutions-IAM5\[Resource::<DriftFunctionLogs[0-9A-F]+\.Arn>:\*\]",
            r"AwsSolutions-IAM5\[Resource::.*Captures.*/captures/model=[A-Za-z0-9._-]+/\*\]",
            r"AwsSolutions-IAM5\[Resource::.*Artifacts.*/(models|drift-reports)/"
            r"[A-Za-z0-9._-]+/\*\]",
            re.escape("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]"),
        ),
        "X-Ray trace writes accept no resource ARN (Resource::*); log streams are created in "
        "the function's own log group; captures are read from hourly partitions under "
        "captures/model=<model>/ of each judged model, whose object names Firehose generates; "
        "bundles are read under models/<model>/ (keys per model version, published after "
        "deploy); reports are read and created under drift-reports/<model>/ "
        "with one key per model version and window, PutObject only with If-None-Match; "
        "kms:GenerateDataKey* (GenerateDataKey and GenerateDataKeyWithoutPlaintext) on the alarm "
        "topic's key alone is what SNS needs to publish to an encrypted topic.",
    ),
    Acknowledgement(
        r"{prefix}-monitoring/(Model[A-Za-z0-9]+)?Capture/DeliveryRole/DefaultPolicy/Resource",
        r"AwsSolutions-IAM5\[Resource::.*Captures.*/(captures|capture-errors)/"
        r"model=[A-Za-z0-9._-]+/\*\]",
        "Firehose names every object it writes (partition prefix, stream name, timestamp, random "
        "id), so a model's stream's role may write objects under captures/model=<model>/ "
        "(deliveries) and capture-errors/model=<model>/ (records it could not process) of the "
        "capture bucket, and nowhere else.",
    ),
    Acknowledgement(
        r"{prefix}-monitoring/Drift/DeadLetters/Resource",
        r"AwsSolutions-SQS3",
        "This queue is itself a dead-letter queue: EventBridge Scheduler's DeadLetterConfig of "
        "the drift schedule and the drift function's on-failure destination send to it. cdk-nag "
        "only recognizes queues named in another queue's RedrivePolicy.",
    ),
    Acknowledgement(
        r"{prefix}-training/SageMakerRole/DefaultPolicy/Resource",
        _ids(
            re.escape("AwsSolutions-IAM5[Resource::*]"),
            r"AwsSolutions-IAM5\[Resource::.*Artifacts.*/(datasets|training-output)/\*\]",
            rf"AwsSolutions-IAM5\[Resource::arn:{_PARTITION}:logs:[a-z0-9-]+:{_ACCOUNT}:log-group:"
            r"/aws/sagemaker/TrainingJobs:\*\]",
        ),
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData accept no resource ARN "
        "(Resource::*; metrics are limited to SageMaker's namespace by a condition); training "
        "data is read under datasets/ and output written under training-output/ with "
        "job-specific keys; SageMaker writes its own /aws/sagemaker/TrainingJobs log streams.",
    ),
    Acknowledgement(
        r"{prefix}-training/TrainingPipelineRole/DefaultPolicy/Resource",
        _ids(
            rf"AwsSolutions-IAM5\[Resource::arn:aws:sagemaker:[a-z0-9-]+:{_ACCOUNT}:"
            r"training-job/\*\]",
            re.escape("AwsSolutions-IAM5[Resource::*]"),
        ),
        "Written by the CDK SageMaker task for the .sync integration: training-job/* because job "
        "names come from the execution input; X-Ray trace writes accept no resource ARN.",
    ),
)


def acknowledge_findings(app: App, prefix: str) -> list[tuple[str, str]]:
    """Acknowledge the findings the table explains; return the (construct path, finding) pairs."""
    report = AwsSolutionsChecks().validate_scope(app)
    rules = [
        (re.compile(ack.path.replace("{prefix}", re.escape(prefix))), re.compile(ack.findings), ack)
        for ack in ACKNOWLEDGEMENTS
    ]
    acknowledged = []
    for violation in report.violations:
        for resource in violation.violating_resources:
            if resource.construct_path is None:
                continue
            ack = next(
                (
                    ack
                    for path, findings, ack in rules
                    if path.fullmatch(resource.construct_path)
                    and findings.fullmatch(violation.rule_name)
                ),
                None,
            )
            if ack is not None:
                Validations.of(_find(app, resource.construct_path)).acknowledge(
                    Acknowledgment(id=violation.rule_name, reason=ack.reason)
                )
                acknowledged.append((resource.construct_path, violation.rule_name))
    return acknowledged


def synth_with_nag(app: App, prefix: str) -> list[tuple[str, str]]:
    """Synthesize with AwsSolutions checks; raise when a finding is not acknowledged. Returns the
    acknowledged (construct path, finding) pairs."""
    app.synth()  # resolves cross-stack references, which finding IDs embed
    acknowledged = acknowledge_findings(app, prefix)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth(force=True)
    return acknowledged


def _find(app: App, path: str) -> IConstruct:
    node: IConstruct = app
    for part in path.split("/"):
        node = node.node.find_child(part)
    return node
