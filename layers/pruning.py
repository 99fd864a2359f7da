"""Remove what Lambda never reads from an installed layer, and strip its own shared objects.

Kept on purpose: ``*.dist-info`` (licenses, and the metadata the pin check reads), ``testing``
packages (``numpy.testing`` is imported by numpy itself), and every vendored ``*.libs/`` folder:
stripping those (measured) broke scipy's bundled OpenBLAS.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from layers.elf import ELF_MAGIC
from layers.errors import LayerBuildError

#: Directory names removed anywhere below the site dir (outside ``*.dist-info``).
PRUNED_DIRS = frozenset({"__pycache__", "tests", "test", "doc", "docs", "include"})
#: Directories removed only at the top: console scripts whose shebang names the build interpreter.
PRUNED_TOP_DIRS = frozenset({"bin"})
#: Type stubs, Cython sources, C headers and static libraries: build-time only.
PRUNED_SUFFIXES = (".pyi", ".pyx", ".pxd", ".pxi", ".h", ".hpp", ".a")


@dataclass(frozen=True)
class StripResult:
    tool: str | None
    stripped: int
    saved_bytes: int
    note: str


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def prune(site_dir: Path) -> int:
    """Delete build-only files and directories below ``site_dir``; return the bytes removed."""
    removed = 0
    for top in PRUNED_TOP_DIRS:
        if (site_dir / top).is_dir():
            removed += _size(site_dir / top)
            shutil.rmtree(site_dir / top)
    for root, dirs, files in os.walk(site_dir):
        here = Path(root)
        if here.name.endswith(".dist-info"):
            dirs.clear()
            continue
        for name in [d for d in dirs if d in PRUNED_DIRS]:
            removed += _size(here / name)
            shutil.rmtree(here / name)
            dirs.remove(name)
        for name in files:
            if name.endswith(PRUNED_SUFFIXES):
                removed += _size(here / name)
                (here / name).unlink()
    return removed


def _host_arch() -> Literal["arm64", "x86_64"] | None:
    if sys.platform != "linux":
        return None  # a non-Linux strip cannot edit ELF files
    machine = platform.machine().lower()
    if machine in {"x86_64", "amd64"}:
        return "x86_64"
    if machine in {"aarch64", "arm64"}:
        return "arm64"
    return None


def strip_tool(arch: Literal["arm64", "x86_64"]) -> str | None:
    """``strip`` for the host arch, else the GNU cross strip for ``arch`` when installed."""
    if _host_arch() == arch:
        return shutil.which("strip")
    cross = "aarch64-linux-gnu-strip" if arch == "arm64" else "x86_64-linux-gnu-strip"
    return shutil.which(cross)


def own_shared_objects(site_dir: Path) -> list[Path]:
    """ELF ``.so`` files of the packages themselves, outside vendored ``*.libs/`` folders."""
    found = []
    for path in sorted(site_dir.rglob("*.so*")):
        if not path.is_file() or path.is_symlink():
            continue
        relative = path.relative_to(site_dir).parts
        if any(part.endswith((".libs", ".dist-info")) for part in relative[:-1]):
            continue
        if not (path.name.endswith(".so") or ".so." in path.name):
            continue
        with path.open("rb") as handle:
            if handle.read(4) == ELF_MAGIC:
                found.append(path)
    return found


def strip_shared_objects(site_dir: Path, arch: Literal["arm64", "x86_64"]) -> StripResult:
    """``strip --strip-unneeded`` every own shared object, when a strip for ``arch`` exists."""
    tool = strip_tool(arch)
    if tool is None:
        return StripResult(
            None,
            0,
            0,
            f"not stripped: no strip for {arch} on this {platform.machine()} host "
            "(install binutils-aarch64-linux-gnu for aarch64-linux-gnu-strip)",
        )
    targets = own_shared_objects(site_dir)
    before = {path: path.stat().st_size for path in targets}
    for start in range(0, len(targets), 200):
        batch = [str(path) for path in targets[start : start + 200]]
        done = subprocess.run(
            [tool, "--strip-unneeded", *batch], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise LayerBuildError(f"{tool} failed: {done.stderr.strip()[-2000:]}")
    saved = {path: size - path.stat().st_size for path, size in before.items()}
    stripped = sum(1 for delta in saved.values() if delta > 0)
    total = sum(saved.values())
    note = f"stripped {stripped} of {len(targets)} own .so files with {Path(tool).name}"
    return StripResult(tool, stripped, total, f"{note}, saved {total / 2**20:.1f} MB")
