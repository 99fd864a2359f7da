"""Keep only the Runtime Interface Emulator binaries of the downloaded aws-sam-cli wheel:
``python tests/runtime/extract_emulator.py OUT`` (``make .lambda-rie/.complete`` runs it)."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

EMULATORS = "samcli/local/rapid/aws-lambda-rie-"


def main(out: Path) -> int:
    (wheel_path,) = (out / "wheel").glob("aws_sam_cli-*.whl")
    with zipfile.ZipFile(wheel_path) as wheel:
        for name in wheel.namelist():
            if name.startswith(EMULATORS):
                target = out / Path(name).name
                target.write_bytes(wheel.read(name))
                target.chmod(0o755)
                print(f"{target} ({target.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
