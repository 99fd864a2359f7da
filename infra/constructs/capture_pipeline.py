"""Prediction capture on AWS, per model: the model's predict function's capture lines →
CloudWatch Logs subscription → its Firehose stream →
``s3://<capture bucket>/captures/model=<name>/dt=YYYY-MM-DD/hour=HH/``.

The predict function prints one compact JSON line per prediction, ``{"lambdaserve_capture":1,...}``
(``lambdaserve.serving.capture_sinks``). A subscription filter on its log group selects those
lines by the marker and hands them to Firehose, gzip'd and wrapped in CloudWatch Logs envelopes
(``{"messageType": "DATA_MESSAGE", "logEvents": [{"message": ...}, ...]}``). Firehose's built-in
processors undo both: ``Decompression`` (GZIP) and ``CloudWatchLogProcessing`` with
``DataMessageExtraction`` deliver only each event's message, i.e. the capture lines as printed
(Amazon Data Firehose developer guide, "Decompression of CloudWatch Logs" and "Message extraction
after decompression of CloudWatch Logs"; CDK's ``DecompressionProcessor`` and
``CloudWatchLogProcessor`` render the same processor types and parameters).
``AppendDelimiterToRecord`` ends every record with a newline, so the last line of one envelope
and the first of the next never share a line (a blank line is skipped by the reader). Objects
are gzip'd JSON lines named ``*.jsonl.gz``, which is what ``lambdaserve.aws.s3_drift_io`` reads.

Each model has its own stream (a stage's single model keeps the stream name it always had), so
its partition key is fixed in the stream's prefix and needs no dynamic partitioning. Partitions
use Firehose's arrival timestamp (UTC), seconds after capture: a record captured in
the last seconds of an hour can land in the next hour's partition.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import CAPTURE_BUFFER_SECONDS, ModelConfig, StageConfig
from infra.constructs.log_group import stage_log_group

#: ``lambdaserve.kernel.capture.LOG_MARKER`` (infra imports no runtime code; a test compares them).
LOG_MARKER = "lambdaserve_capture"
FILTER_PATTERN = f"{{ $.{LOG_MARKER} = 1 }}"
#: ``lambdaserve.kernel.capture.model_prefix`` (infra imports no runtime code; a test compares).
MODEL_PARTITION = "captures/model={model}/"
PARTITIONS = "dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
ERROR_PREFIX = (
    "capture-errors/model={model}/!{{firehose:error-output-type}}/dt=!{{timestamp:yyyy-MM-dd}}/"
)
FILE_EXTENSION = ".jsonl.gz"
BUFFER_MB = 5


def capture_prefix(model: str) -> str:
    """Where the model's stream writes: its own tree of hour partitions."""
    return MODEL_PARTITION.format(model=model) + PARTITIONS


def written_prefixes(model: str) -> tuple[str, ...]:
    """Object keys the model's delivery role may write: its captures, and its records Firehose
    could not process."""
    return (MODEL_PARTITION.format(model=model), f"capture-errors/model={model}/")


class CapturePipeline(Construct):
    """One model's delivery stream into the capture bucket and the subscription of its predict
    function's log group that feeds it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        model: ModelConfig,
        capture_bucket: s3.IBucket,
        source: logs.ILogGroup,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.model = model
        errors = stage_log_group(self, "DeliveryLogs", config, key=logs_key)
        errors_stream = logs.LogStream(
            self, "DeliveryErrors", log_group=errors, removal_policy=RemovalPolicy.DESTROY
        )
        role = self._delivery_role(capture_bucket, errors, errors_stream)
        if capture_bucket.encryption_key is not None:
            # SSE-KMS: S3 encrypts each delivery with a data key made for the writer.
            capture_bucket.encryption_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        self.delivery_stream = self._delivery_stream(
            config, capture_bucket, role, errors, errors_stream
        )
        # Firehose checks its role when the stream is created: the policy must exist first.
        policy = role.node.try_find_child("DefaultPolicy")
        assert policy is not None
        self.delivery_stream.node.add_dependency(policy)
        self.subscription = logs.CfnSubscriptionFilter(
            self,
            "Subscription",
            log_group_name=source.log_group_name,
            filter_pattern=FILTER_PATTERN,
            destination_arn=self.delivery_stream.attr_arn,
            role_arn=self._subscription_role(source).role_arn,
        )

    @property
    def delivery_stream_name(self) -> str:
        return self.delivery_stream.ref

    def _delivery_stream(
        self,
        config: StageConfig,
        bucket: s3.IBucket,
        role: iam.IRole,
        errors: logs.ILogGroup,
        errors_stream: logs.ILogStream,
    ) -> firehose.CfnDeliveryStream:
        """Direct PUT, gzip'd JSON lines by arrival hour; its own errors to ``errors_stream``."""
        name = self.model.name
        return firehose.CfnDeliveryStream(
            self,
            "Stream",
            delivery_stream_name=self.model.capture_stream_name(config.prefix),
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                    key_type="AWS_OWNED_CMK"
                )
            ),
            extended_s3_destination_configuration=(
                firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                    bucket_arn=bucket.bucket_arn,
                    role_arn=role.role_arn,
                    prefix=capture_prefix(name),
                    error_output_prefix=ERROR_PREFIX.format(model=name),
                    file_extension=FILE_EXTENSION,
                    compression_format="GZIP",
                    buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                        interval_in_seconds=CAPTURE_BUFFER_SECONDS, size_in_m_bs=BUFFER_MB
                    ),
                    processing_configuration=_processing(),
                    cloud_watch_logging_options=(
                        firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                            enabled=True,
                            log_group_name=errors.log_group_name,
                            log_stream_name=errors_stream.log_stream_name,
                        )
                    ),
                )
            ),
        )

    def _delivery_role(
        self, bucket: s3.IBucket, errors: logs.ILogGroup, errors_stream: logs.ILogStream
    ) -> iam.Role:
        """What Firehose needs to write an S3 destination (Firehose developer guide, "Grant
        Firehose access to an Amazon S3 destination"), its objects narrowed to our prefixes."""
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"sts:ExternalId": stack.account}},
            ),
            description=f"lambdaserve capture delivery of {self.model.name}: write its captures",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                resources=[
                    bucket.arn_for_objects(f"{prefix}*")
                    for prefix in written_prefixes(self.model.name)
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:PutLogEvents"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=(
                            f"{errors.log_group_name}:log-stream:{errors_stream.log_stream_name}"
                        ),
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        return role

    def _subscription_role(self, source: logs.ILogGroup) -> iam.Role:
        """The role CloudWatch Logs assumes to put the selected lines into this stream only,
        and only on behalf of the predict function's log group: CloudWatch Logs names the log
        group as ``aws:SourceArn`` when it assumes the role (both ARN forms, with and without
        the ``:*`` CloudFormation's log group ``Arn`` carries, are accepted)."""
        stack = Stack.of(self)
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=source.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        return iam.Role(
            self,
            "SubscriptionRole",
            assumed_by=iam.ServicePrincipal(
                f"logs.{stack.region}.amazonaws.com",
                conditions={
                    "ArnLike": {"aws:SourceArn": [log_group_arn, f"{log_group_arn}:*"]},
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            ),
            description="lambdaserve capture subscription: CloudWatch Logs to the capture stream",
            # Inline, so it exists before the subscription filter, which CloudWatch Logs tests by
            # delivering to the stream when the filter is created.
            inline_policies={
                "PutCaptures": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                            resources=[self.delivery_stream.attr_arn],
                        )
                    ]
                )
            },
        )


def _processing() -> firehose.CfnDeliveryStream.ProcessingConfigurationProperty:
    def processor(kind: str, **parameters: str) -> firehose.CfnDeliveryStream.ProcessorProperty:
        return firehose.CfnDeliveryStream.ProcessorProperty(
            type=kind,
            parameters=[
                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                    parameter_name=name, parameter_value=value
                )
                for name, value in parameters.items()
            ]
            or None,
        )

    return firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
        enabled=True,
        processors=[
            processor("Decompression", CompressionFormat="GZIP"),
            processor("CloudWatchLogProcessing", DataMessageExtraction="true"),
            processor("AppendDelimiterToRecord"),
        ],
    )
