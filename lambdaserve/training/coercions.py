"""Counting what cleaning changes, and the missing-value rules the target and features share."""

from __future__ import annotations

import logging

import pandas as pd

from lambdaserve.kernel.manifest import Coercion
from lambdaserve.kernel.schema import MISSING_TOKENS

log = logging.getLogger("lambdaserve.training.cleaning")


class CoercionReport:
    """Every coercion cleaning applies, counted and logged (a count of zero is not recorded)."""

    def __init__(self) -> None:
        self.coercions: list[Coercion] = []

    def add(self, column: str, action: str, count: int, message: str) -> None:
        if count:
            log.warning("%s: %s", column, message)
            self.coercions.append(
                Coercion(column=column, action=action, count=count, message=message)
            )


def is_blank(series: pd.Series) -> pd.Series:
    return series.map(lambda v: isinstance(v, str) and v.strip() == "").astype(bool)


def replace_missing_tokens(series: pd.Series, name: str, report: CoercionReport) -> pd.Series:
    """Text cells holding a missing-value token (NA, null, ?, ...) become missing, counted."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series
    tokens = series.map(
        lambda v: isinstance(v, str) and bool(v.strip()) and v.strip().lower() in MISSING_TOKENS
    )
    tokens = tokens.astype(bool)
    report.add(
        name,
        "missing_token_to_missing",
        int(tokens.sum()),
        f"{int(tokens.sum())} missing-value tokens (NA, null, ?, ...) became missing values",
    )
    return series.mask(tokens) if tokens.any() else series
