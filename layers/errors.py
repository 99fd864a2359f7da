"""Errors of the layer build: one base class, one subclass per refusal."""

from __future__ import annotations


class LayerBuildError(Exception):
    """A layer or function asset could not be built as specified."""


class PinMismatchError(LayerBuildError):
    """pip installed a distribution set or version other than the requirement file pins."""


class ForbiddenDistributionError(LayerBuildError):
    """A distribution that must never ship in a layer (pandas) ended up in one."""


class LayerBudgetError(LayerBuildError):
    """Function code plus layers exceed Lambda's unzipped deployment size limit."""
