"""A training script's ``requirements.txt`` checked against the environment it will run in.

SageMaker pip-installs a source directory's ``requirements.txt`` before it runs the script; run
locally, the script runs in the user's own environment, which lambdaserve never installs into.
So each requirement must already be satisfied there, or the run is refused naming the ones that
are not (packaging's requirement parsing, ``importlib.metadata``'s installed versions).
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from lambdaserve.kernel.errors import TrainingError

_COMMENT = re.compile(r"(^|\s)#.*$")
_INCLUDE = re.compile(r"^(-r|--requirement)[\s=]+(?P<path>\S+)$")
#: Options that install something we cannot check against installed metadata.
_UNCHECKABLE = ("-e", "--editable")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with their numbers, continuations (trailing ``\\``) joined, comments dropped."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        start = start or number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        if line:
            lines.append((start, line))
        pending, start = "", 0
    return lines


def read_requirements(path: Path, seen: frozenset[Path] = frozenset()) -> list[Requirement]:
    """The requirements a pip requirements file names, following ``-r FILE``; other options
    (index URLs, ``--hash``) are pip's business and skipped."""
    requirements: list[Requirement] = []
    for number, line in _logical_lines(path.read_text()):
        if included := _INCLUDE.match(line):
            nested = (path.parent / included["path"]).resolve()
            if nested not in seen:
                requirements += read_requirements(nested, seen | {path.resolve()})
            continue
        if line.startswith(_UNCHECKABLE):
            raise TrainingError(
                f"{path}:{number}: {line!r} cannot be checked against the installed packages: "
                "name a requirement (and install it yourself)"
            )
        if line.startswith("-"):
            continue
        try:
            requirements.append(Requirement(line.split(" --", 1)[0].strip()))
        except InvalidRequirement as exc:
            raise TrainingError(f"{path}:{number}: {line!r} is not a requirement: {exc}") from None
    return requirements


def unsatisfied(requirements: list[Requirement]) -> list[str]:
    """Each requirement this environment does not satisfy, with what it has instead."""
    problems: list[str] = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            problems.append(f"{requirement} (not installed)")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{requirement} (installed: {installed})")
    return problems


def check_requirements(path: Path) -> None:
    """Refuse when ``path`` (if it exists) names a requirement this environment lacks."""
    if not path.is_file():
        return
    problems = unsatisfied(read_requirements(path))
    if problems:
        raise TrainingError(
            f"{path} is not satisfied by this Python environment ({sys.prefix}): "
            + "; ".join(problems)
            + ". lambdaserve never installs packages into your environment: install them "
            f"yourself (pip install -r {path}) or relax the requirements, then train again"
        )
