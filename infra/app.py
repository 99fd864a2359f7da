"""The CDK app: ``cdk synth -c stage=dev`` from the repo root (see cdk.json)."""

from __future__ import annotations

from aws_cdk import App, Environment, Tags

from infra.config import StageConfig, load_stage_config
from infra.nag_suppressions import synth_with_nag
from infra.stacks.monitoring_stack import MonitoringStack
from infra.stacks.serving_stack import ServingStack
from infra.stacks.storage_stack import StorageStack
from infra.stacks.training_stack import TrainingStack


def build_app(app: App, config: StageConfig) -> dict[str, object]:
    """Stacks split by stability: storage (stateful) → serving, monitoring, training
    (stateless)."""
    env = Environment(account=config.account, region=config.region)
    storage = StorageStack(
        app, f"{config.prefix}-storage", config=config, env=env, termination_protection=True
    )
    serving = ServingStack(
        app,
        f"{config.prefix}-serving",
        config=config,
        artifact_bucket=storage.artifact_bucket,
        capture_salt=storage.capture_salt,
        logs_key=storage.logs_key,
        env=env,
    )
    training = TrainingStack(
        app,
        f"{config.prefix}-training",
        config=config,
        artifact_bucket=storage.artifact_bucket,
        logs_key=storage.logs_key,
        env=env,
    )
    monitoring = MonitoringStack(
        app,
        f"{config.prefix}-monitoring",
        config=config,
        capture_bucket=storage.capture_bucket,
        artifact_bucket=storage.artifact_bucket,
        predict_log_groups={name: served.log_group for name, served in serving.models.items()},
        alarm_topic=serving.alarm_topic,
        logs_key=storage.logs_key,
        env=env,
    )
    for stack in (storage, serving, monitoring, training):
        Tags.of(stack).add("project", "lambdaserve")
        Tags.of(stack).add("stage", config.stage)
    return {"storage": storage, "serving": serving, "monitoring": monitoring, "training": training}


def main() -> None:
    app = App()
    config = load_stage_config(app.node)
    build_app(app, config)
    synth_with_nag(app, config.prefix)


if __name__ == "__main__":
    main()
