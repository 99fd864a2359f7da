"""Read the training channel: every CSV or Parquet file in it, concatenated."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lambdaserve.kernel.errors import TrainingError

SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz")


@dataclass(frozen=True)
class LoadedData:
    frame: pd.DataFrame
    fingerprint: str
    files: tuple[str, ...]


def _data_files(channel: Path) -> list[Path]:
    if channel.is_file():
        return [channel]
    if not channel.is_dir():
        raise TrainingError(f"training channel {channel} does not exist")
    files = sorted(
        p for p in channel.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES)
    )
    if not files:
        raise TrainingError(f"no CSV or Parquet files in training channel {channel}")
    return files


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        # Everything as text first: typing is decided (and every coercion counted) by cleaning.
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=False
        )
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise TrainingError(f"could not read {path.name}: {exc}") from exc


def load_training_data(channel: Path) -> LoadedData:
    files = _data_files(channel)
    digest = hashlib.sha256()
    frames = []
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        frames.append(_read(path))
    columns = list(frames[0].columns)
    for path, frame in zip(files[1:], frames[1:], strict=True):
        if list(frame.columns) != columns:
            raise TrainingError(f"{path.name} has different columns from {files[0].name}")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if frame.empty:
        raise TrainingError("the training data has no rows")
    return LoadedData(
        frame=frame, fingerprint=digest.hexdigest(), files=tuple(p.name for p in files)
    )
