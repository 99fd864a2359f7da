"""The metrics a synthesized CloudFormation template reads: in alarms, math and Metrics
Insights expressions, and dashboards (their metric arrays and ``SEARCH`` expressions)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from lambdaserve.kernel.metric_names import NAMESPACE

#: ``SELECT AVG(DriftedFeatures) FROM SCHEMA("lambdaserve", ...)``: a Metrics Insights query.
_INSIGHTS = re.compile(r'SELECT\s+\w+\((\w+)\)\s+FROM\s+SCHEMA\("([^"]+)"')


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


#: ``SEARCH('{lambdaserve,model_name,...} MetricName="MeanScore" ...')`` in a dashboard.
_SEARCH = re.compile(r"SEARCH\('\{([^,}]+)[^}]*\} MetricName=\\?\"([\w.]+)\\?\"")


def dashboard_bodies(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dashboard's body, parsed (references to other resources become ``<ref>``)."""
    bodies = []
    for resource in template.get("Resources", {}).values():
        if resource["Type"] != "AWS::CloudWatch::Dashboard":
            continue
        body = resource["Properties"]["DashboardBody"]
        if isinstance(body, dict):  # {"Fn::Join": ["", [parts...]]}
            parts = body["Fn::Join"][1]
            body = "".join(part if isinstance(part, str) else "<ref>" for part in parts)
        bodies.append(json.loads(body))
    return bodies


def dashboard_metrics(template: dict[str, Any]) -> set[tuple[str, str]]:
    """(namespace, metric name) of every metric a dashboard draws, SEARCH expressions included."""
    found: set[tuple[str, str]] = set()
    for body in dashboard_bodies(template):
        for widget in body["widgets"]:
            for entry in widget.get("properties", {}).get("metrics", []):
                if isinstance(entry[0], str) and not entry[0].startswith("..."):
                    found.add((entry[0], entry[1]))
                for part in entry:
                    if isinstance(part, dict) and "expression" in part:
                        found |= set(_SEARCH.findall(part["expression"]))
    return found


def our_metrics(template: dict[str, Any]) -> set[str]:
    """The names of every metric in our namespace an alarm (or a math/insights expression, or
    a dashboard) of ``template`` reads."""
    names = {name for namespace, name in dashboard_metrics(template) if namespace == NAMESPACE}
    for node in _walk(template.get("Resources", {})):
        if node.get("Namespace") == NAMESPACE and isinstance(node.get("MetricName"), str):
            names.add(node["MetricName"])
        expression = node.get("Expression")
        if isinstance(expression, str):
            names |= {m for m, ns in _INSIGHTS.findall(expression) if ns == NAMESPACE}
    return names
