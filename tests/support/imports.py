"""What a built function asset imports of ours, read statically (``ast``), without running it."""

from __future__ import annotations

import ast
from pathlib import Path

from layers.function_asset import runtime_nodes

FIRST_PARTY = frozenset({"lambdaserve", "functions"})


def unresolved_first_party_imports(asset: Path) -> list[str]:
    """``lambdaserve``/``functions`` imports of asset modules that the asset cannot satisfy (at
    run time: ``if TYPE_CHECKING:`` imports never run)."""

    def resolves(module: str) -> bool:
        base = asset.joinpath(*module.split("."))
        return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()

    unresolved = []
    for source in asset.rglob("*.py"):
        for node in runtime_nodes(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            unresolved += [
                f"{source.relative_to(asset)}: {module}"
                for module in modules
                if module.split(".")[0] in FIRST_PARTY and not resolves(module)
            ]
    return unresolved
