"""Which types beyond lambdaserve's allow-list a deployment lets skops load, and from where.

Trust is a deployment setting, never read from an artifact: a stage's ``custom_code`` setting on
AWS (``TRUSTED_TYPES`` in the function's environment, its code in the function asset), or
``--code DIR`` and ``--trust TYPE`` locally. A bundle's manifest only *declares* the types its
model file needs (``custom_types``); loading refuses each one this deployment does not trust.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from lambdaserve.kernel.errors import BundleError


@dataclass(frozen=True)
class ModelTrust:
    """Types trusted by name, plus every type defined in the top-level modules of ``code_dirs``
    (the user's own package, named with ``--code``: shipping code is trusting its classes)."""

    types: frozenset[str] = frozenset()
    code_dirs: tuple[Path, ...] = ()

    @classmethod
    def from_settings(
        cls, types: Iterable[str] = (), code_dirs: Iterable[Path | str] = ()
    ) -> ModelTrust:
        dirs = tuple(Path(d).resolve() for d in code_dirs)
        for directory in dirs:
            if not directory.is_dir():
                raise BundleError(f"custom code directory {directory} does not exist")
        return cls(types=frozenset(t.strip() for t in types if t.strip()), code_dirs=dirs)

    @cached_property
    def code_modules(self) -> frozenset[str]:
        """The top-level modules and packages the code directories hold."""
        names: set[str] = set()
        for directory in self.code_dirs:
            for path in directory.iterdir():
                if path.suffix == ".py":
                    names.add(path.stem)
                elif (path / "__init__.py").is_file():
                    names.add(path.name)
        return frozenset(names)

    def allows(self, type_name: str) -> bool:
        return type_name in self.types or type_name.split(".")[0] in self.code_modules

    def refused(self, type_names: Iterable[str]) -> list[str]:
        return sorted(t for t in set(type_names) if not self.allows(t))

    def activate(self) -> None:
        """Make the code directories importable (first on ``sys.path``), once each."""
        for directory in reversed(self.code_dirs):
            if str(directory) not in sys.path:
                sys.path.insert(0, str(directory))


NO_TRUST = ModelTrust()
