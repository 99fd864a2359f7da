"""Exact pins: read them from requirement files and prove an installed layer matches them.

pip with ``--platform`` silently settles for older releases when a tag is missing (measured: with
``manylinux2014`` alone it resolved year-old wheels and no onnxruntime at all), so every build
checks the installed ``*.dist-info/METADATA`` against the pins and the dependency closure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Literal

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement

from layers.errors import ForbiddenDistributionError, LayerBuildError, PinMismatchError

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)$")
_HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")

#: Distributions the Lambda python3.13 runtime itself provides: requirements on them are met
#: without a layer (boto3 is deliberately in no layer).
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
#: Distributions that must never ship in a layer, with the reason and the layers exempted.
FORBIDDEN = {
    "pandas": (
        "DESIGN decision 6: no pandas on the serving path, but in the dataframe layer (a "
        "stage's dataframe_inputs: pipelines fitted on a DataFrame)",
        frozenset({"dataframe"}),
    )
}


@dataclass(frozen=True)
class InstalledDist:
    name: str
    version: str
    requires: tuple[str, ...]


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    """One entry of a requirement file exported from uv.lock: ``name==version ; marker`` and the
    sha256 of every artifact the lock knows for it."""

    name: str
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies(self, arch: Literal["arm64", "x86_64"]) -> bool:
        """Whether the Lambda python3.13 runtime on ``arch`` installs this entry."""
        return self.marker is None or self.marker.evaluate(_target_environment(arch))

    @property
    def line(self) -> str:
        """The entry as pip reads it in hash-checking mode, marker already decided."""
        return " ".join([f"{self.name}=={self.version}", *self.hashes])


def _entries(path: Path) -> list[tuple[int, str]]:
    """``(first line number, text)`` of each entry, backslash continuations joined, comments
    dropped."""
    entries: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line and not pending:
            continue
        if not pending:
            start = number
        continued = line.endswith("\\")
        pending.append(line.removesuffix("\\").strip())
        if not continued:
            entries.append((start, " ".join(part for part in pending if part)))
            pending = []
    if pending:
        entries.append((start, " ".join(pending)))
    return entries


def read_requirements(path: Path) -> list[Pin]:
    """Every entry of an exported requirement file; anything but an exact pin carrying its
    hashes is refused (the file was edited by hand, or not exported with hashes)."""
    pins: list[Pin] = []
    for number, text in _entries(path):
        requirement, *options = text.split(" --hash=")
        hashes = tuple(f"--hash={option.strip()}" for option in options)
        spec, _, marker_text = requirement.partition(";")
        match = _PIN.match(spec.strip())
        if match is None:
            raise LayerBuildError(
                f"{path}:{number}: {spec.strip()!r} is not an exact name==version pin"
            )
        if not hashes or not all(_HASH.match(h) for h in hashes):
            raise LayerBuildError(
                f"{path}:{number}: {spec.strip()!r} carries no sha256 --hash: export the file "
                "from uv.lock (`make lock`)"
            )
        try:
            marker = Marker(marker_text.strip()) if marker_text.strip() else None
        except InvalidMarker as exc:
            raise LayerBuildError(f"{path}:{number}: unreadable marker {marker_text!r}") from exc
        pins.append(Pin(normalize(match["name"]), match["version"], marker, hashes))
    return pins


def read_pins(path: Path, arch: Literal["arm64", "x86_64"] = "arm64") -> dict[str, str]:
    """``{normalized name: version}`` of what an exported requirement file installs on ``arch``."""
    return {pin.name: pin.version for pin in read_requirements(path) if pin.applies(arch)}


def target_requirements(path: Path, arch: Literal["arm64", "x86_64"], out: Path) -> Path:
    """Write the entries of ``path`` that apply on ``arch`` with their hashes and no markers
    (pip evaluates markers against the interpreter that runs it, not the ``--platform`` it
    installs for) into ``out``, for ``pip --require-hashes``."""
    out.write_text("".join(f"{p.line}\n" for p in read_requirements(path) if p.applies(arch)))
    return out


def installed_dists(site_dir: Path) -> dict[str, InstalledDist]:
    """Every distribution pip installed into ``site_dir``, keyed by normalized name."""
    dists: dict[str, InstalledDist] = {}
    for metadata in sorted(site_dir.glob("*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(metadata.read_text(encoding="utf-8"))
        name, version = headers["Name"], headers["Version"]
        if not name or not version:
            raise LayerBuildError(f"{metadata} has no Name or Version")
        requires = tuple(headers.get_all("Requires-Dist") or ())
        dists[normalize(name)] = InstalledDist(str(name), str(version), requires)
    return dists


def verify_pins(dists: Mapping[str, InstalledDist], pins: Mapping[str, str], layer: str) -> None:
    """Installed set and versions equal the pins exactly, or a message listing every difference."""
    problems = [
        f"{name}: pinned {version}, installed {dists[name].version}"
        for name, version in sorted(pins.items())
        if name in dists and dists[name].version != version
    ]
    problems += [
        f"{name}: pinned {pins[name]}, not installed" for name in sorted(pins.keys() - dists.keys())
    ]
    problems += [
        f"{name}: installed {dists[name].version}, not pinned"
        for name in sorted(dists.keys() - pins.keys())
    ]
    if problems:
        raise PinMismatchError(
            f"layer {layer!r} does not match its pins (a missing --platform tag makes pip settle "
            "for older wheels): " + "; ".join(problems)
        )


def refuse_forbidden(site_dir: Path, dists: Mapping[str, InstalledDist], layer: str) -> None:
    for name, (reason, exempted) in FORBIDDEN.items():
        if layer in exempted:
            continue
        if name in dists or (site_dir / name).exists():
            raise ForbiddenDistributionError(f"layer {layer!r} contains {name!r}: {reason}")


def _target_environment(arch: Literal["arm64", "x86_64"]) -> dict[str, str]:
    """PEP 508 marker values of the Lambda python3.13 runtime."""
    return {
        "python_version": "3.13",
        "python_full_version": "3.13.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "aarch64" if arch == "arm64" else "x86_64",
        "extra": "",
    }


def verify_closure(
    dists: Mapping[str, InstalledDist],
    available: Mapping[str, str],
    *,
    arch: Literal["arm64", "x86_64"],
    layer: str,
) -> None:
    """Every runtime requirement of every installed dist is met by ``available`` (this layer's
    and its base layers' pins) or by the runtime: the pins are a complete closure."""
    environment = _target_environment(arch)
    problems: list[str] = []
    for dist in dists.values():
        for text in dist.requires:
            try:
                requirement = Requirement(text)
            except InvalidRequirement as exc:
                raise LayerBuildError(f"{dist.name}: unreadable requirement {text!r}") from exc
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            name = normalize(requirement.name)
            if name in available:
                if not requirement.specifier.contains(available[name], prereleases=True):
                    problems.append(f"{dist.name} needs {requirement}, pinned {available[name]}")
            elif name not in RUNTIME_PROVIDED:
                problems.append(f"{dist.name} needs {requirement}, which no pin provides")
    if problems:
        raise PinMismatchError(f"layer {layer!r} pins are not a closure: " + "; ".join(problems))
