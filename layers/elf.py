"""Just enough ELF header reading to tell which CPU a shared object was built for."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

ELF_MAGIC = b"\x7fELF"
#: ``e_machine`` values of the two Lambda architectures.
ELF_MACHINES: dict[Literal["arm64", "x86_64"], int] = {"arm64": 183, "x86_64": 62}


def elf_machine(path: Path) -> int | None:
    """``e_machine`` of an ELF file, or None when ``path`` is not ELF."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != ELF_MAGIC:
        return None
    byteorder: Literal["little", "big"] = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], byteorder)
