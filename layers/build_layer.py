"""Build the predict function's dependency layers for the python3.13 runtime without Docker.

pip downloads the pinned manylinux wheels for the target architecture (arm64 by default, Graviton)
into ``<output_dir>/python``, the layer is pruned of what Lambda never reads, its own shared
objects are stripped when a strip for the target exists, and Python 3.13 compiles its bytecode.
Every build checks installed versions against the pins and refuses pandas (but in the
dataframe layer).

From CDK local bundling (``ILocalBundling.try_bundle(output_dir, options)``)::

    build_layer("onnx", arch="arm64", output_dir=Path(output_dir))
    return True

From a shell: ``python -m layers.build_layer serving-base onnx --arch arm64 --out build/layers``
builds ``build/layers/<name>/python`` and ``build/layers/function``, prints the size report and
exits 1 when function plus layers exceed Lambda's 250 MB unzipped limit.

The CDK app's local bundling uses two more forms: ``NAME... --combined --out DIR`` merges the
named layers into the one layer a function deploys (``DIR/python``), after the same budget check;
``--function-asset --out DIR`` writes the function's code asset into ``DIR``. Both act for the
predict function unless ``--function rollout`` (or ``drift``) names another function.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

from layers.budget import LAMBDA_UNZIPPED_LIMIT, MB, check_budget
from layers.bytecode import compile_bytecode
from layers.elf import ELF_MACHINES, elf_machine
from layers.errors import LayerBudgetError, LayerBuildError
from layers.function_asset import FUNCTION_ASSETS, build_function_asset
from layers.lock_export import LAYER_BASES, layer_requirements
from layers.pins import (
    installed_dists,
    read_pins,
    refuse_forbidden,
    target_requirements,
    verify_closure,
    verify_pins,
)
from layers.pruning import prune, strip_shared_objects
from layers.report import LayerReport, format_report, measure

__all__ = [
    "LAYERS",
    "Arch",
    "LayerBudgetError",
    "LayerBuildError",
    "LayerReport",
    "build_function_asset",
    "build_layer",
    "check_budget",
    "format_report",
]

Arch = Literal["arm64", "x86_64"]
#: Layer name -> its requirement file, exported from uv.lock (layers.lock_export). boto3 is in
#: none: the python3.13 runtime provides it.
LAYERS: dict[str, Path] = {name: layer_requirements(name) for name in LAYER_BASES}
#: glibc of the python3.13 runtime (Amazon Linux 2023).
RUNTIME_GLIBC_MINOR = 34
_MACHINES: dict[Arch, str] = {"arm64": "aarch64", "x86_64": "x86_64"}


def platform_tags(arch: Arch) -> list[str]:
    """Every manylinux tag the runtime's glibc 2.34 accepts. pip takes ``--platform`` literally:
    given ``manylinux2014`` alone it settles for old releases. ``py3-none-any`` wheels need no
    tag: pip always accepts them next to the given platforms."""
    machine = _MACHINES[arch]
    tags = [f"manylinux2014_{machine}"]
    return tags + [f"manylinux_2_{minor}_{machine}" for minor in range(17, RUNTIME_GLIBC_MINOR + 1)]


#: A directory of pre-fetched wheels (``python -m layers.wheelhouse``): when set, builds read no
#: package index at all, which keeps the tests that build layers on loopback.
WHEELHOUSE_ENV = "LAMBDASERVE_WHEELHOUSE"


def pip_target_options(arch: Arch) -> list[str]:
    """What selects the python3.13 runtime's wheels for ``arch``, for install and download."""
    options = ["--no-deps", "--only-binary=:all:"]
    options += ["--python-version", "3.13", "--implementation", "cp", "--abi", "cp313"]
    for tag in platform_tags(arch):
        options += ["--platform", tag]
    wheelhouse = os.environ.get(WHEELHOUSE_ENV)
    if wheelhouse:
        options += ["--no-index", "--find-links", wheelhouse]
    return options


def pip_install(requirements: Path, site_dir: Path, arch: Arch) -> None:
    """Install the entries of ``requirements`` that apply on ``arch``, each checked against the
    sha256 the lock recorded for it."""
    with tempfile.TemporaryDirectory(prefix="lambdaserve-pins-") as tmp:
        pinned = target_requirements(requirements, arch, Path(tmp) / requirements.name)
        command = [sys.executable, "-m", "pip", "install", *pip_target_options(arch)]
        command += ["--target", str(site_dir), "--no-compile", "--quiet", "--require-hashes"]
        command += ["--disable-pip-version-check", "-r", str(pinned)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        detail = "\n".join(errors) or done.stderr[-3000:]
        raise LayerBuildError(f"pip could not install {requirements.name} for {arch}: {detail}")


def _verify_machine(site_dir: Path, arch: Arch) -> None:
    expected = ELF_MACHINES[arch]
    wrong = [
        str(path.relative_to(site_dir))
        for path in site_dir.rglob("*.so*")
        if path.is_file() and elf_machine(path) not in (None, expected)
    ]
    if wrong:
        raise LayerBuildError(f"shared objects not built for {arch}: {sorted(wrong)[:10]}")


def build_layer(name: str, *, arch: Arch, output_dir: Path, strip: bool = True) -> LayerReport:
    """Build layer ``name`` into ``output_dir/python`` (the layer zip's root is ``output_dir``).

    ``strip`` runs ``strip --strip-unneeded`` on the packages' own ``.so`` files (measured on
    x86_64: -6.2% for sklearn, -1.4% for serving-base, -0.1% for onnx), when a strip for ``arch``
    is installed; otherwise the report says it was skipped.
    """
    if name not in LAYERS:
        raise LayerBuildError(f"unknown layer {name!r}; known: {sorted(LAYERS)}")
    site_dir = output_dir / "python"
    if site_dir.exists() and any(site_dir.iterdir()):
        raise LayerBuildError(f"refusing to build layer {name!r} into non-empty {site_dir}")
    pins = read_pins(LAYERS[name], arch)
    available = dict(pins)
    for base in LAYER_BASES[name]:
        available.update(read_pins(LAYERS[base], arch))

    pip_install(LAYERS[name], site_dir, arch)
    dists = installed_dists(site_dir)
    refuse_forbidden(site_dir, dists, name)
    verify_pins(dists, pins, name)
    verify_closure(dists, available, arch=arch, layer=name)
    _verify_machine(site_dir, arch)

    installed_bytes = measure(site_dir)[0]
    pruned = prune(site_dir)
    stripped = strip_shared_objects(site_dir, arch) if strip else None
    compiled_from = measure(site_dir)[0]
    compile_bytecode(site_dir, runtime_path="/opt/python")
    size, files, largest = measure(site_dir)
    notes = [
        f"pip installed {installed_bytes / MB:.1f} MB; pruned {pruned / MB:.1f} MB "
        "(tests, stubs, Cython sources, headers, console scripts)",
        stripped.note if stripped else "not stripped: strip=False",
        f"bytecode added {(size - compiled_from) / MB:.1f} MB",
    ]
    return LayerReport(
        name=name,
        arch=arch,
        unzipped_bytes=size,
        file_count=files,
        largest_packages=largest,
        stripped_so_count=stripped.stripped if stripped else 0,
        notes=tuple(notes),
    )


def build_combined(
    names: Sequence[str],
    *,
    arch: Arch,
    output_dir: Path,
    strip: bool = True,
    function: str = "predict",
) -> tuple[list[LayerReport], int]:
    """One deployable layer from several requirement sets, refused before anything is written
    to ``output_dir`` when it and ``function``'s code asset pass the size budget together."""
    with tempfile.TemporaryDirectory(prefix="lambdaserve-layer-") as tmp:
        work = Path(tmp)
        reports = [
            build_layer(name, arch=arch, output_dir=work / name, strip=strip)
            for name in dict.fromkeys(names)
        ]
        function_bytes = FUNCTION_ASSETS[function](work / "function")
        check_budget(function_bytes, {r.name: r.unzipped_bytes for r in reports})
        for report in reports:
            shutil.copytree(
                work / report.name / "python", output_dir / "python", dirs_exist_ok=True
            )
    return reports, function_bytes


def _function_asset(function: str, out: Path, custom_code: Path | None) -> int:
    if custom_code is not None:
        size = build_function_asset(out, custom_code=custom_code)
    else:
        size = FUNCTION_ASSETS[function](out)
    print(f"{function} function asset: {size / MB:.2f} MB")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m layers.build_layer", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("names", nargs="*", choices=sorted(LAYERS), metavar="NAME")
    parser.add_argument("--arch", choices=get_args(Arch), default="arm64")
    parser.add_argument("--out", type=Path, required=True, help="builds OUT/<name>, OUT/function")
    parser.add_argument("--no-strip", action="store_true", help="leave shared objects unstripped")
    parser.add_argument("--combined", action="store_true", help="merge NAMEs into OUT/python")
    parser.add_argument("--function-asset", action="store_true", help="build only the function")
    parser.add_argument(
        "--function",
        choices=sorted(FUNCTION_ASSETS),
        default="predict",
        help="whose code --function-asset builds and --combined counts in the budget",
    )
    parser.add_argument(
        "--custom-code", type=Path, help="the stage's custom_code directory (predict only)"
    )
    args = parser.parse_args(argv)
    if args.custom_code is not None and args.function != "predict":
        parser.error("--custom-code is the predict function's")
    if args.function_asset:
        return _function_asset(args.function, args.out, args.custom_code)
    if not args.names:
        parser.error("name at least one layer")
    if args.combined:
        try:
            reports, function_bytes = build_combined(
                args.names,
                arch=args.arch,
                output_dir=args.out,
                strip=not args.no_strip,
                function=args.function,
            )
        except LayerBuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(format_report(reports))
        total = function_bytes + sum(r.unzipped_bytes for r in reports)
        print(f"function + layer: {total / MB:.1f} MB of {LAMBDA_UNZIPPED_LIMIT // MB} MB unzipped")
        return 0
    try:
        reports = [
            build_layer(name, arch=args.arch, output_dir=args.out / name, strip=not args.no_strip)
            for name in dict.fromkeys(args.names)
        ]
        function_bytes = build_function_asset(args.out / "function")
        print(format_report(reports))
        print(f"function asset: {function_bytes / MB:.2f} MB")
        total = check_budget(function_bytes, {r.name: r.unzipped_bytes for r in reports})
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"function + layers: {total / MB:.1f} MB of {LAMBDA_UNZIPPED_LIMIT // MB} MB unzipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
