"""Stateless training: a Step Functions state machine that runs a SageMaker training job with
AWS's scikit-learn framework image and our ``training/`` code (script mode), or the stage's
``training_source`` (the user's script directory) in its place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import AssetHashType, CfnOutput, Duration, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.assets import REPO_ROOT, training_source_bundling
from infra.config import StageConfig, TrainingSource
from infra.constructs.log_group import stage_log_group
from infra.constructs.sklearn_image import image_repository_arn, training_image
from infra.constructs.state_machine_role import state_machine_role

DATASETS_PREFIX = "datasets/"
OUTPUT_PREFIX = "training-output/"
#: The channel the source archive arrives in (as the SageMaker Python SDK does with network
#: isolation), and where SageMaker puts it in the container.
CODE_CHANNEL = "code"
CODE_CHANNEL_DIR = f"/opt/ml/input/data/{CODE_CHANNEL}"
#: Execution inputs that may be left out, and their values (the training job's hyperparameters).
INPUT_DEFAULTS = {"task": "auto"}


class _S3Uri(tasks.S3Location):
    """An ``s3://`` location that grants nothing: the SageMaker role's S3 access is written out
    explicitly below. (CDK's ``from_json_expression`` grants s3:GetObject on every bucket, and
    ``from_bucket`` renders an https:// URL and grants deletes.)"""

    def __init__(self, uri: str) -> None:
        super().__init__()
        self._uri = uri

    def bind(
        self, task: Any, *, for_reading: bool | None = None, for_writing: bool | None = None
    ) -> tasks.S3LocationConfig:
        return tasks.S3LocationConfig(uri=self._uri)


class TrainingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        artifact_bucket: s3.IBucket,
        logs_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._logs_key = logs_key
        user = config.training_source
        directory = user_source_dir(user) if user else None
        source = s3_assets.Asset(
            self,
            "TrainingSource",
            path=str(directory or REPO_ROOT / "training"),
            bundling=training_source_bundling(directory, _program(config)),
            # The archive holds more than the directory (our packages, the resolved wheels):
            # its hash is the archive's, so a change to any of them uploads a new one.
            asset_hash_type=AssetHashType.OUTPUT,
        )
        role = self._sagemaker_role(config, artifact_bucket, source)
        train = self._train_task(config, artifact_bucket, source, role)
        self.state_machine = self._state_machine(config, train)
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)

    def _sagemaker_role(
        self, config: StageConfig, artifact_bucket: s3.IBucket, source: s3_assets.Asset
    ) -> iam.Role:
        """The job's role: its data, code and output, its logs and metrics, its image."""
        role = iam.Role(
            self,
            "SageMakerRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="lambdaserve training job: read datasets and code, write model output",
        )
        statements = self._storage_statements(artifact_bucket, source)
        for statement in statements + self._runtime_statements(config):
            role.add_to_policy(statement)
        return role

    def _storage_statements(
        self, artifact_bucket: s3.IBucket, source: s3_assets.Asset
    ) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    artifact_bucket.arn_for_objects(f"{DATASETS_PREFIX}*"),
                    f"arn:{self.partition}:s3:::{source.s3_bucket_name}/{source.s3_object_key}",
                ],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[artifact_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{DATASETS_PREFIX}*"]}},
            ),
            # The code channel is an S3 prefix naming exactly the archive: SageMaker lists it.
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[f"arn:{self.partition}:s3:::{source.s3_bucket_name}"],
                conditions={"StringEquals": {"s3:prefix": [source.s3_object_key]}},
            ),
            # Not narrower than training-output/*: every job runs as this one role, and IAM
            # cannot tell two of its sessions apart (SageMaker assumes it with a fixed session
            # name and no per-job session tags), so no policy can give each job its own prefix.
            # What keeps one job off another's output is that only SageMaker writes: the job
            # runs with network isolation (_train_task), so code in the container cannot use
            # these credentials at all, and SageMaker uploads only to <S3OutputPath>/
            # <TrainingJobName>/, refusing a job name already used in the account and region.
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[artifact_bucket.arn_for_objects(f"{OUTPUT_PREFIX}*")],
            ),
        ]

    def _runtime_statements(self, config: StageConfig) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    f"arn:{self.partition}:logs:{self.region}:{self.account}"
                    ":log-group:/aws/sagemaker/TrainingJobs:*"
                ],
            ),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
                },
            ),
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[image_repository_arn(training_image(config))],
            ),
        ]

    def _train_task(
        self,
        config: StageConfig,
        artifact_bucket: s3.IBucket,
        source: s3_assets.Asset,
        role: iam.IRole,
    ) -> tasks.SageMakerCreateTrainingJob:
        return tasks.SageMakerCreateTrainingJob(
            self,
            "Train",
            training_job_name=sfn.JsonPath.string_at("$.job_name"),
            role=role,
            algorithm_specification=tasks.AlgorithmSpecification(
                training_image=tasks.DockerImage.from_registry(training_image(config)),
                training_input_mode=tasks.InputMode.FILE,
            ),
            # Nothing in the container reaches the network (S3 included): the code arrives as a
            # channel and installs from its own wheels (training/source_bundle.py).
            enable_network_isolation=True,
            hyperparameters={
                # Script mode: the framework container runs our entry point from the archive
                # SageMaker copied into the code channel (a local path: no S3 call inside).
                "sagemaker_program": _program(config),
                "sagemaker_submit_directory": f"{CODE_CHANNEL_DIR}/{source.s3_object_key}",
                "sagemaker_region": self.region,
                "target": sfn.JsonPath.string_at("$.target"),
                "model_name": sfn.JsonPath.string_at("$.model_name"),
                "estimator": sfn.JsonPath.string_at("$.estimator"),
                "task": sfn.JsonPath.string_at("$.task"),
            },
            input_data_config=[
                # An s3:// URI under the artifact bucket's datasets/ prefix (the role can read
                # nothing else), and the code archive.
                _channel("train", sfn.JsonPath.string_at("$.train_s3_uri")),
                _channel(CODE_CHANNEL, source.s3_object_url),
            ],
            output_data_config=tasks.OutputDataConfig(
                s3_output_location=_S3Uri(f"s3://{artifact_bucket.bucket_name}/{OUTPUT_PREFIX}"),
            ),
            resource_config=tasks.ResourceConfig(
                instance_count=1,
                instance_type=_instance_type(config.training_instance_type),
                volume_size=Size.gibibytes(30),
            ),
            stopping_condition=tasks.StoppingCondition(
                max_runtime=Duration.seconds(config.training_max_runtime_seconds)
            ),
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_path="$.training",
        )

    def _state_machine(
        self, config: StageConfig, train: tasks.SageMakerCreateTrainingJob
    ) -> sfn.StateMachine:
        """One training job: the bundle written, or the job's failure."""
        failed = sfn.Fail(
            self, "TrainingFailed", cause="SageMaker training job failed", error="TrainingFailed"
        )
        train.add_catch(failed, result_path="$.error")
        # Optional inputs take their defaults (an input names them to override): "task" is auto.
        defaults = sfn.Pass(
            self,
            "WithDefaults",
            parameters={
                "merged.$": "States.JsonMerge(States.StringToJson("
                f"'{json.dumps(INPUT_DEFAULTS)}'), $, false)"
            },
            output_path="$.merged",
        )
        logs_group = stage_log_group(self, "StateMachineLogs", config, key=self._logs_key)
        machine_name = f"{config.prefix}-training"
        return sfn.StateMachine(
            self,
            "TrainingPipeline",
            state_machine_name=machine_name,
            role=state_machine_role(
                self,
                "TrainingPipelineRole",
                state_machine_name=machine_name,
                description="lambdaserve training state machine: run one SageMaker training job",
            ),
            definition_body=sfn.DefinitionBody.from_chainable(
                defaults.next(train).next(sfn.Succeed(self, "BundleWritten"))
            ),
            timeout=Duration.seconds(config.training_max_runtime_seconds + 600),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )


def _program(config: StageConfig) -> str:
    """The entry point SageMaker runs: the stage's training source's, else our train.py."""
    return config.training_source.entry_point if config.training_source else "train.py"


def user_source_dir(source: TrainingSource) -> Path:
    """The stage's training source directory (relative paths from cdk.json's directory), which
    must hold its entry point."""
    directory = (REPO_ROOT / source.path).resolve()
    if not (directory / source.entry_point).is_file():
        raise ValueError(
            f"training_source: {directory} holds no entry point {source.entry_point!r} "
            "(path is relative to cdk.json)"
        )
    return directory


def _channel(name: str, uri: str) -> tasks.Channel:
    return tasks.Channel(
        channel_name=name,
        data_source=tasks.DataSource(s3_data_source=tasks.S3DataSource(s3_location=_S3Uri(uri))),
    )


def _instance_type(name: str) -> Any:
    from aws_cdk import aws_ec2 as ec2

    return ec2.InstanceType(name.removeprefix("ml."))
