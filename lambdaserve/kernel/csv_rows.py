"""Turn CSV text rows into JSON-typed feature rows for a model's schema (client side)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

from lambdaserve.kernel.schema import FeatureSchema


def _number(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def feature_rows(
    schema: FeatureSchema, rows: Iterable[Mapping[str, str]]
) -> Iterator[dict[str, object]]:
    """Keep the schema's columns; blanks become null; numbers that do not parse become null."""
    for row in rows:
        features: dict[str, object] = {}
        for spec in schema.features:
            raw = row.get(spec.name)
            if raw is None or not raw.strip():
                features[spec.name] = None
            elif spec.kind == "numeric":
                try:
                    features[spec.name] = _number(raw)
                except ValueError:
                    features[spec.name] = None
            else:
                features[spec.name] = raw.strip()
        yield features
