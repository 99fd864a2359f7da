"""Lambda's deployment size limit: function code plus all its layers, unzipped."""

from __future__ import annotations

from collections.abc import Mapping

from layers.errors import LayerBudgetError

MB = 1024 * 1024
#: 250 MB unzipped for the function and all its layers together (262,144,000 bytes).
LAMBDA_UNZIPPED_LIMIT = 250 * MB


def check_budget(
    function_bytes: int, layer_bytes: Mapping[str, int], limit: int = LAMBDA_UNZIPPED_LIMIT
) -> int:
    """The unzipped total, or :class:`LayerBudgetError` naming every part when over ``limit``.

    >>> check_budget(1 * MB, {"serving-base": 60 * MB, "onnx": 70 * MB}) // MB
    131
    """
    total = function_bytes + sum(layer_bytes.values())
    if total > limit:
        parts = [f"function {function_bytes / MB:.1f} MB"]
        parts += [f"layer {name} {size / MB:.1f} MB" for name, size in layer_bytes.items()]
        raise LayerBudgetError(
            f"{' + '.join(parts)} = {total / MB:.1f} MB unzipped, over Lambda's limit of "
            f"{limit / MB:.0f} MB for function code and layers together by "
            f"{(total - limit) / MB:.1f} MB"
        )
    return total
