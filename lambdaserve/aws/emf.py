"""Powertools ``Metrics`` writing CloudWatch embedded metric format in our namespace."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from lambdaserve.kernel.metric_names import NAMESPACE


def emf_metrics(service: str, dimensions: dict[str, str] | None = None) -> Metrics:
    """Metrics of one function's ``service``, with ``dimensions`` on every document. Powertools
    keeps metric sets on the class; a provider of our own keeps them per caller."""
    provider = AmazonCloudWatchEMFProvider(
        namespace=NAMESPACE,
        service=service,
        metric_set={},
        dimension_set={},
        metadata_set={},
        default_dimensions=dimensions or {},
    )
    return Metrics(provider=provider)
