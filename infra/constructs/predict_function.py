"""One model's prediction function: its log group, least-privilege role, dependency layer,
function, ``live`` alias on a fixed bootstrap version, and (once the API exists) its alarms.

Not a construct: it builds into the scope it is given, so the single model of a stage without
``models`` keeps the logical IDs it has always had in the serving stack (a new ID would
replace the alias and lose the weights the rollout controller set), and each model of
``models`` builds into a scope of its own (``ModelChurn``).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Tags
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.assets import predict_function_code
from infra.config import ModelConfig, StageConfig
from infra.constructs.log_group import stage_log_group
from infra.constructs.predict_alarms import PredictAlarms
from infra.constructs.python_function import (
    dependency_layer,
    lambda_architecture,
    logs_and_tracing,
)
from infra.constructs.rollout_targets import RolloutTarget

LIVE_ALIAS = "live"
HANDLER = "functions.predict.handler.lambda_handler"
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_BATCH_ROWS = 5000
LAYER_SETS = {"onnx": ["serving-base", "onnx"], "sklearn": ["serving-base", "sklearn"]}
#: Where the predict asset holds a model's custom_code packages, on Lambda.
CUSTOM_CODE_ROOT = "/var/task/custom_code"
#: ``lambdaserve.aws.stage_functions.MODEL_TAG`` (a test compares them).
MODEL_TAG = "lambdaserve:model"
#: The API path a model of ``models`` answers under (``/models/<name>/predict``).
MODEL_ROUTES = "models"


def layer_sets(model: ModelConfig) -> list[str]:
    """The predict layer's requirement sets: the runtime's, plus pandas for dataframe_inputs."""
    return LAYER_SETS[model.runtime] + (["dataframe"] if model.dataframe_inputs else [])


def api_base_path(model: ModelConfig) -> str:
    """The path before the app's own routes: ``/models/<name>`` under ``models``, else none."""
    return f"/{MODEL_ROUTES}/{model.name}" if model.prefixed else ""


def predict_environment(
    config: StageConfig, model: ModelConfig, salt_secret_arn: str = ""
) -> dict[str, str]:
    """Exactly the fields ``lambdaserve.serving.settings.ServingSettings`` reads on Lambda (a
    test checks it), plus Powertools' own variables. Not ``CAPTURE_SALT``: a secret never
    travels in the environment; the function reads the stage's capture secret (the salt of
    ``capture_hash`` fields, and what its feedback token key is derived from) from the Secrets
    Manager secret ``CAPTURE_SALT_SECRET`` names, once per execution environment. Nor
    ``CAPTURE_MASK``/``CAPTURE_HASH``: a published version keeps the environment it was
    published with, so the policy lives in the SSM parameter ``CAPTURE_POLICY_PARAMETER``
    names, which every serving version re-reads each minute (a change reaches them all)."""
    environment = {
        "CAPTURE_ENABLED": "true" if model.capture else "false",
        "CAPTURE_POLICY_PARAMETER": capture_policy_parameter_name(config),
        "CAPTURE_SALT_SECRET": salt_secret_arn,
        "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "MAX_BATCH_ROWS": str(MAX_BATCH_ROWS),
        "BUNDLE_CACHE_DIR": "/tmp/lambdaserve-bundles",  # noqa: S108 - Lambda's only writable dir
        "PREFERRED_RUNTIME": model.runtime,
        "POWERTOOLS_SERVICE_NAME": "lambdaserve-predict",
        "POWERTOOLS_METRICS_NAMESPACE": "lambdaserve",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if model.prefixed:
        environment["API_BASE_PATH"] = api_base_path(model)
    if model.model_uri and model.model_sha256:
        environment |= {"MODEL_URI": model.model_uri, "MODEL_SHA256": model.model_sha256}
    if model.custom_code is not None:
        # The model's own code is in the asset (layers.function_asset.CUSTOM_CODE_DIR); its
        # types and the ones named are what skops may load beyond our allow-list.
        environment["CODE_DIRS"] = CUSTOM_CODE_ROOT
        if model.custom_code.trusted_types:
            environment["TRUSTED_TYPES"] = ",".join(sorted(model.custom_code.trusted_types))
    return environment


def capture_policy_parameter_name(config: StageConfig) -> str:
    return f"/{config.prefix}/capture-policy"


class PredictFunction:
    """The resources of one served model, built into ``scope``."""

    def __init__(
        self,
        scope: Construct,
        *,
        config: StageConfig,
        model: ModelConfig,
        artifact_bucket: s3.IBucket,
        capture_salt: secretsmanager.ISecret,
        capture_policy: ssm.IStringParameter,
        logs_key: kms.IKey,
    ) -> None:
        self.scope = scope
        self.model = model
        #: Its log group: the capture lines in it feed the model's capture stream.
        self.log_group: logs.ILogGroup = stage_log_group(scope, "PredictLogs", config, key=logs_key)
        self.role = self._role(artifact_bucket)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[capture_salt.secret_arn]
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"], resources=[capture_policy.parameter_arn]
            )
        )
        self.function = self._function(config, capture_salt)
        # How `--backend aws` finds a model's function (lambdaserve.aws.stage_functions).
        Tags.of(self.function).add(MODEL_TAG, model.name)
        self.alias, self.bootstrap = self._live_alias()
        self.alarms: PredictAlarms | None = None

    def add_alarms(
        self, api: apigw.RestApi, topic: sns.ITopic, routes: list[tuple[str, str]]
    ) -> PredictAlarms:
        """Its guards: the alias, the bootstrap version, and the API's 5XX on its ``routes``
        (resource path, method) — every route of the API for the stage's single model."""
        self.alarms = PredictAlarms(
            self.scope,
            "Guards",
            function=self.function,
            alias=self.alias,
            versions={"Bootstrap": self.bootstrap.attr_version},
            api=api,
            routes=routes if self.model.prefixed else None,
            topic=topic,
            thresholds=self.model.alarms,
        )
        return self.alarms

    def rollout_target(self) -> RolloutTarget:
        """What the shared rollout function moves for this model: its function's ``live``
        alias, rolled back by its own stack-wide guards (alias and API) besides the
        challenger's."""
        assert self.alarms is not None, "add_alarms first"
        return RolloutTarget(function=self.function, guard_alarms=self.alarms.stack_guards)

    def _function(
        self, config: StageConfig, capture_salt: secretsmanager.ISecret
    ) -> lambda_.Function:
        model = self.model
        layer = dependency_layer(
            self.scope,
            "ServingLayer",
            config=config,
            requirement_sets=layer_sets(model),
            function="predict",
            description=f"{model.runtime} dependencies",
        )
        return lambda_.Function(
            self.scope,
            "Predict",
            function_name=model.function_name,
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_architecture(config),
            handler=HANDLER,
            code=predict_function_code(Path(model.custom_code.path) if model.custom_code else None),
            layers=[layer],
            memory_size=model.memory_mb,
            timeout=Duration.seconds(model.timeout_seconds),
            reserved_concurrent_executions=model.reserved_concurrency,
            # Each published version's init is snapshotted (the runtime hooks are in
            # lambdaserve.wiring.snapstart_hooks); $LATEST, which serves nothing, is not.
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if model.snap_start else None,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            environment=predict_environment(config, model, capture_salt.secret_arn),
            description=f"lambdaserve prediction API of {model.name} (FastAPI + Mangum); "
            "versions pin one bundle",
        )

    def _live_alias(self) -> tuple[lambda_.Alias, lambda_.CfnVersion]:
        """The alias and the bootstrap version it starts on."""
        # The `live` alias is created ONCE and then belongs to the rollout controller.
        # It points at a bootstrap version whose logical ID and properties never change, so
        # CloudFormation never sees a difference on the alias and never updates it: later
        # deploys change $LATEST (code, layers, configuration) but leave the alias's versions and
        # routing weights exactly as the controller last set them. Model versions are published
        # by `lambdaserve publish` (one Lambda version per bundle), not by CloudFormation, and
        # CDK's `current_version` is deliberately not used (its logical ID changes with the code,
        # which would repoint the alias and wipe the weights on every deploy).
        bootstrap = lambda_.CfnVersion(
            self.scope,
            "BootstrapVersion",
            function_name=self.function.function_name,
            description="bootstrap version the live alias starts on; never updated by deploys",
        )
        bootstrap.apply_removal_policy(RemovalPolicy.RETAIN)
        alias = lambda_.Alias(
            self.scope,
            "Live",
            alias_name=LIVE_ALIAS,
            version=lambda_.Version.from_version_attributes(
                self.scope, "Bootstrap", version=bootstrap.attr_version, lambda_=self.function
            ),
            description="owned by the lambdaserve rollout controller after creation",
        )
        return alias, bootstrap

    def _role(self, artifact_bucket: s3.IBucket) -> iam.Role:
        """Least privilege: its own log group, X-Ray, the capture secret and policy, and
        reading its own model's bundles (``models/<name>/``) only."""
        role = iam.Role(
            self.scope,
            "PredictRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"lambdaserve predict function of {self.model.name}",
        )
        for statement in logs_and_tracing(self.log_group):
            role.add_to_policy(statement)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[artifact_bucket.arn_for_objects(f"{self.model.bundle_prefix}*")],
            )
        )
        return role
