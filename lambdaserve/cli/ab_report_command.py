"""``lambdaserve ab report``: each arm's quality on ground-truth feedback (POST /feedback), the
challenger against the champion, and whether traffic split as intended."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from lambdaserve.abtest.report import ab_report, split_stream
from lambdaserve.cli.options import JsonOption, StoreOption, parse_time
from lambdaserve.kernel.capture import CaptureRecord, FeedbackRecord
from lambdaserve.kernel.errors import LambdaserveError
from lambdaserve.registry.model_registry import CHAMPION
from lambdaserve.views.abtest import print_ab_report
from lambdaserve.views.console import fail
from lambdaserve.wiring import aws
from lambdaserve.wiring.local import LocalBackend, open_local


def _shares(values: list[str] | None) -> dict[str, float] | None:
    """``["1=0.5", "2=0.5"]`` → ``{"1": 0.5, "2": 0.5}``."""
    if not values:
        return None
    shares: dict[str, float] = {}
    for value in values:
        version, _, share = value.partition("=")
        try:
            shares[version] = float(share)
        except ValueError:
            shares[version] = -1.0
        if not version or not shares[version] >= 0:
            raise typer.BadParameter(f"expected VERSION=SHARE, got {value!r}", param_hint="--split")
    if sum(shares.values()) <= 0:
        raise typer.BadParameter("the shares add up to 0", param_hint="--split")
    return shares


def report(
    name: Annotated[str, typer.Argument(help="Model name")],
    since: Annotated[
        str | None,
        typer.Option(help="Predictions from this time, ISO 8601 (default: 24 h before --until)"),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Predictions until this time (default: now)")
    ] = None,
    feedback_days: Annotated[
        int, typer.Option(min=0, help="Feedback may arrive this many days after --until")
    ] = 7,
    baseline: Annotated[
        str | None,
        typer.Option(
            help="Bundle version to compare against (default: the A/B's or registry's champion)"
        ),
    ] = None,
    split: Annotated[
        list[str] | None,
        typer.Option(
            help="Intended share VERSION=SHARE, repeatable (default: the A/B's current split)"
        ),
    ] = None,
    min_labelled: Annotated[int, typer.Option(min=2, help="Fewer per arm: not compared")] = 100,
    capture_bucket: Annotated[
        str | None,
        typer.Option(help="Read captures and feedback from this S3 bucket (AWS) instead"),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Quality of every arm on ground-truth feedback, compared with the champion, plus an SRM
    check of the split."""
    start, end = _window(since, until)
    local = open_local(store)
    baseline, split = _ab_defaults(local, name, baseline, split)
    try:
        baseline = baseline if baseline is not None else _champion_version(local, name)
        manifest = local.store.get(name).manifest
        captures, feedback = _captures_and_feedback(
            local, capture_bucket, name, (start, end), feedback_days=feedback_days
        )
        result = ab_report(
            name,
            captures,
            feedback,
            task=manifest.task,
            classes=manifest.classes,
            positive_class=manifest.positive_class,
            baseline=baseline,
            expected_share=_shares(split),
            min_labelled=min_labelled,
        )
    except LambdaserveError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(asdict(result)))
    else:
        print_ab_report(result)


def _window(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """The window [--since, --until): --until defaults to now, --since to 24 h before it."""
    end = parse_time(until, "--until") if until else datetime.now(UTC)
    start = parse_time(since, "--since") if since else end - timedelta(hours=24)
    if start >= end:
        fail("--since must be before --until", code=2)
    return start, end


def _champion_version(local: LocalBackend, name: str) -> str | None:
    """The bundle version of the registry's champion of ``name``, if it has one."""
    champion = local.registry.by_alias(name, CHAMPION)
    return champion.bundle_version if champion is not None else None


def _ab_defaults(
    local: LocalBackend, name: str, baseline: str | None, split: list[str] | None
) -> tuple[str | None, list[str] | None]:
    """``--baseline`` and ``--split`` where not given, from the model's A/B rollout (if one is
    recorded): its champion's bundle version and its current split."""
    state = local.rollout_states().load(name)
    if state is not None and state.plan.kind == "ab":
        baseline = baseline or state.champion.bundle_version or None
        if split is None and state.champion.bundle_version and state.challenger.bundle_version:
            split = [
                f"{state.champion.bundle_version}={1 - state.weight}",
                f"{state.challenger.bundle_version}={state.weight}",
            ]
    return baseline, split


def _captures_and_feedback(
    local: LocalBackend,
    capture_bucket: str | None,
    name: str,
    window: tuple[datetime, datetime],
    *,
    feedback_days: int,
) -> tuple[list[CaptureRecord], list[FeedbackRecord]]:
    """Model ``name``'s captures of ``window`` [start, end) and the feedback received up to
    ``feedback_days`` after it (its partitions only), from ``capture_bucket`` in S3 when given,
    else from the local store."""
    start, end = window
    feedback_end = end + timedelta(days=feedback_days)
    if capture_bucket:
        stream = aws.capture_stream(capture_bucket, start, feedback_end, model=name)
    else:
        stream = local.capture_stream(start, feedback_end, model=name)
    return split_stream(stream, start, end)
