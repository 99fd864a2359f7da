"""The REST API in front of the models' ``live`` aliases: explicit routes, authorization on every
method, request validation, throttling, access logs, tracing and (optionally) AWS WAF.

The single model of a stage without ``models`` answers on the app's own routes (``/predict``);
each model of ``models`` on them under ``/models/<name>/`` (``/models/churn/predict``), each
integrated with its own alias."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.config import ModelConfig, StageConfig
from infra.constructs.log_group import stage_log_group
from infra.constructs.predict_function import MODEL_ROUTES

#: Route -> HTTP methods. Everything the app serves, nothing else (no catch-all proxy).
ROUTES: dict[str, tuple[str, ...]] = {
    "health": ("GET",),
    "model": ("GET",),
    "predict": ("POST",),
    "predict/batch": ("POST",),
    "feedback": ("POST",),
    "docs": ("GET",),
    "openapi.json": ("GET",),
}


class PredictApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        targets: list[tuple[ModelConfig, lambda_.IFunction]],
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = stage_log_group(self, "AccessLogs", config, key=logs_key)
        self.api = self._rest_api(config, access_logs)
        #: Each model's routes as (resource path, method), what its 5XX alarm sums.
        self.routes: dict[str, list[tuple[str, str]]] = {}
        self._add_routes(config, targets)
        if config.waf:
            self._web_acl(config)

    def _rest_api(self, config: StageConfig, access_logs: logs.ILogGroup) -> apigw.RestApi:
        return apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{config.prefix}-predict",
            description=f"lambdaserve prediction API ({config.stage})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            default_cors_preflight_options=_cors(config),
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies carry customer features
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )

    def _add_routes(
        self, config: StageConfig, targets: list[tuple[ModelConfig, lambda_.IFunction]]
    ) -> None:
        """Every route of ``ROUTES`` of every model to its alias, authorized, bodies
        validated."""
        body_model = self.api.add_model(
            "JsonObject",
            content_type="application/json",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT
            ),
            description="Bodies are JSON objects; the function validates every field",
        )
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        authorization_type, authorizer = self._authorization(config)
        for model, target in targets:
            integration = apigw.LambdaIntegration(target, proxy=True)
            base = f"{MODEL_ROUTES}/{model.name}/" if model.prefixed else ""
            routes = self.routes.setdefault(model.name, [])
            for path, methods in ROUTES.items():
                resource = self.api.root.resource_for_path(base + path)
                for method in methods:
                    resource.add_method(
                        method,
                        integration,
                        request_validator=validator,
                        request_models=(
                            {"application/json": body_model} if method == "POST" else None
                        ),
                        authorization_type=authorization_type,
                        authorizer=authorizer,
                    )
                    routes.append((f"/{base}{path}", method))

    def _authorization(
        self, config: StageConfig
    ) -> tuple[apigw.AuthorizationType, apigw.IAuthorizer | None]:
        if config.auth_mode == "iam":
            return apigw.AuthorizationType.IAM, None
        assert config.cognito_user_pool_arn is not None
        pool = cognito.UserPool.from_user_pool_arn(self, "UserPool", config.cognito_user_pool_arn)
        authorizer = apigw.CognitoUserPoolsAuthorizer(self, "Authorizer", cognito_user_pools=[pool])
        return apigw.AuthorizationType.COGNITO, authorizer

    def _web_acl(self, config: StageConfig) -> None:
        def managed(name: str, priority: int, *count_only: str) -> wafv2.CfnWebACL.RuleProperty:
            overrides = [
                wafv2.CfnWebACL.RuleActionOverrideProperty(
                    name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                )
                for rule in count_only
            ]
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name, rule_action_overrides=overrides or None
                    )
                ),
                visibility_config=_visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{config.prefix}-api"),
            rules=[
                # The common rule set blocks bodies over 8 KB, which would block every real batch;
                # the function enforces its own byte cap (413) before parsing.
                managed("AWSManagedRulesCommonRuleSet", 0, "SizeRestrictions_BODY"),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 1),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _cors(config: StageConfig) -> apigw.CorsOptions | None:
    """Preflight answers for the stage's allowed origins, if any."""
    if not config.cors_allowed_origins:
        return None
    return apigw.CorsOptions(
        allow_origins=list(config.cors_allowed_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "Authorization", "X-Amz-Date", "X-Amz-Security-Token"],
        allow_credentials=True,
    )
