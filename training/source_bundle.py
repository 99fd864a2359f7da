"""Build ``sourcedir.tar.gz`` for SageMaker script mode: ``train.py`` at the root, the parts of
``lambdaserve`` the job imports, and ``requirements.txt`` exported from ``uv.lock``.

Run by the CDK app's local bundling: ``python -m training.source_bundle --out DIR``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = "sourcedir.tar.gz"
#: What the training job imports; serving, the CLI and the AWS adapters stay out.
PACKAGES = ("lambdaserve/__init__.py", "lambdaserve/core", "lambdaserve/training")


#: Exported from uv.lock (``make lock``): exact pins with hashes, the closure of the training extra.
REQUIREMENTS = REPO_ROOT / "training" / "requirements.txt"


def requirements() -> str:
    return REQUIREMENTS.read_text()


def _files() -> list[tuple[str, bytes]]:
    files = [("train.py", (REPO_ROOT / "training" / "train.py").read_bytes())]
    for entry in PACKAGES:
        path = REPO_ROOT / entry
        sources = [path] if path.is_file() else sorted(path.rglob("*.py"))
        files += [(p.relative_to(REPO_ROOT).as_posix(), p.read_bytes()) for p in sources]
    files.append(("requirements.txt", requirements().encode()))
    return files


def build(out: Path) -> Path:
    """Write a reproducible archive (sorted entries, zeroed times) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in _files():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    archive = out / ARCHIVE
    with archive.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buffer.getvalue())
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    archive = build(parser.parse_args().out)
    print(f"{archive} ({archive.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
