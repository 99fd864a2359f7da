"""Seal, verify, pack and unpack model bundles.

A bundle is a directory with ``manifest.json`` and the files it lists. The manifest records the
sha256 of every other file, so the sha256 of ``manifest.json`` (the *bundle digest*) pins the whole
bundle; that digest is what ``MODEL_SHA256`` names. Loading verifies every hash before anything is
deserialized, and refuses pickle-family files, links and unlisted files outright.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from lambdaserve.kernel.errors import BundleError, BundleIntegrityError, UnsafeArtifactError
from lambdaserve.kernel.manifest import MANIFEST_FILE, FileEntry, Manifest

#: Extensions of formats that execute code when loaded. Never deserialized, never accepted.
UNSAFE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".pck", ".dill", ".cloudpickle"})
#: Bounds for unpacking an archive: no bundle of ours comes near them.
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
MAX_BUNDLE_FILES = 64
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle directory whose every file matched its manifest hash when it was opened."""

    path: Path
    manifest: Manifest
    digest: str
    #: sha256 of the ``bundle.tar.gz`` it was opened from (``None`` for a directory): what the
    #: registry records, so a later open checks the archive before reading any of it.
    archive_sha256: str | None = None

    def file(self, name: str) -> Path:
        return self.path / name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _listed_files(directory: Path) -> list[str]:
    names = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if path.is_symlink():
            raise UnsafeArtifactError(
                f"bundle file {relative!r} is a symbolic link; links are refused"
            )
        if path.suffix.lower() in UNSAFE_SUFFIXES:
            raise UnsafeArtifactError(
                f"bundle file {relative!r} is a pickle-family file; lambdaserve never loads "
                "pickle or joblib (save the model with skops or ONNX)"
            )
        if path.is_file() and relative != MANIFEST_FILE:
            names.append(relative)
    return names


def seal_bundle(directory: Path, manifest: Manifest) -> VerifiedBundle:
    """Hash every file in ``directory``, write ``manifest.json`` and return the sealed bundle."""
    files = {
        name: FileEntry(
            sha256=sha256_file(directory / name), size=(directory / name).stat().st_size
        )
        for name in _listed_files(directory)
    }
    sealed = manifest.model_copy(update={"files": files})
    payload = json.dumps(sealed.model_dump(mode="json"), indent=2, sort_keys=True).encode()
    (directory / MANIFEST_FILE).write_bytes(payload + b"\n")
    return verify_bundle(directory)


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{directory} is not a model bundle: {MANIFEST_FILE} is missing")
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'manifest'}: {err['msg']}"
            for err in exc.errors(include_input=False)[:5]
        )
        raise BundleError(f"{MANIFEST_FILE} is not a valid manifest ({problems})") from exc


def verify_bundle(directory: Path, expected_digest: str | None = None) -> VerifiedBundle:
    """Check the manifest digest, then every file's presence, size and sha256. Raise on any gap."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"model bundle {directory} does not exist or is not a directory")
    present = _listed_files(directory)
    digest = sha256_file(directory / MANIFEST_FILE) if (directory / MANIFEST_FILE).is_file() else ""
    if expected_digest is not None and digest != expected_digest.lower():
        raise BundleIntegrityError(
            f"bundle digest mismatch: expected sha256 {expected_digest}, manifest.json has "
            f"{digest or 'no manifest'}; the bundle is not the one that was published"
        )
    manifest = read_manifest(directory)
    missing = sorted(set(manifest.files) - set(present))
    if missing:
        raise BundleIntegrityError(f"bundle is incomplete: missing {missing}")
    extra = sorted(set(present) - set(manifest.files))
    if extra:
        raise BundleIntegrityError(f"bundle holds files its manifest does not list: {extra}")
    for name, entry in sorted(manifest.files.items()):
        path = directory / name
        size = path.stat().st_size
        if size != entry.size:
            raise BundleIntegrityError(
                f"bundle file {name!r} is {size} bytes, manifest says {entry.size} "
                "(truncated or replaced)"
            )
        if sha256_file(path) != entry.sha256:
            raise BundleIntegrityError(f"bundle file {name!r} does not match its sha256 (tampered)")
    if manifest.onnx.file is not None and manifest.onnx.file not in manifest.files:
        raise BundleIntegrityError(
            f"manifest names ONNX file {manifest.onnx.file!r} it does not list"
        )
    if manifest.skops_file not in manifest.files:
        raise BundleIntegrityError(
            f"manifest names model file {manifest.skops_file!r} it does not list"
        )
    return VerifiedBundle(path=directory, manifest=manifest, digest=digest)


def pack_bundle(directory: Path, archive: Path) -> Path:
    """Write a reproducible ``bundle.tar.gz`` (sorted entries, zeroed times and owners)."""
    verify_bundle(directory)
    archive.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in [MANIFEST_FILE, *_listed_files(directory)]:
            data = (directory / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o444
            tar.addfile(info, io.BytesIO(data))
    with archive.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buffer.getvalue())
    return archive


def unpack_bundle(archive: Path, destination: Path) -> Path:
    """Extract an archive safely: regular files only, no absolute or parent paths, bounded size.

    Members are read one header at a time and every limit is checked before the next is read,
    so an archive of 300,000 tiny entries or one claiming terabytes is refused after at most
    ``MAX_BUNDLE_FILES + 1`` headers, in milliseconds, having written at most the allowed bytes.
    """
    try:
        tar = tarfile.open(archive, mode="r|gz")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{archive.name} is not a readable bundle archive ({exc})") from exc
    staging = destination.with_name(destination.name + f".partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with tar:
            _extract_bounded(tar, archive.name, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if destination.exists():
        shutil.rmtree(staging)
    else:
        staging.rename(destination)
    return destination


def _extract_bounded(tar: tarfile.TarFile, name: str, staging: Path) -> None:
    entries = total = 0
    try:
        for member in tar:
            entries += 1
            if entries > MAX_BUNDLE_FILES:
                raise UnsafeArtifactError(
                    f"{name} holds more than {MAX_BUNDLE_FILES} entries, too many for a bundle"
                )
            if not member.isfile() and not member.isdir():
                raise UnsafeArtifactError(f"archive entry {member.name!r} is not a regular file")
            if member.name.startswith("/") or ".." in Path(member.name).parts:
                raise UnsafeArtifactError(f"archive entry {member.name!r} escapes the bundle")
            total += member.size
            if total > MAX_BUNDLE_BYTES:
                raise UnsafeArtifactError(f"{name} unpacks to more than {MAX_BUNDLE_BYTES} bytes")
            tar.extract(member, staging, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleIntegrityError(f"{name} is truncated or corrupt ({exc})") from exc


def open_bundle(
    location: Path,
    *,
    cache_dir: Path,
    expected_digest: str | None = None,
    expected_archive_sha256: str | None = None,
) -> VerifiedBundle:
    """Open a bundle directory or ``bundle.tar.gz``, verifying every hash before returning.

    ``expected_archive_sha256`` (recorded at registration) is checked on the archive's bytes
    before a single member is read: a replaced archive is refused unopened."""
    location = Path(location)
    if location.is_dir():
        return verify_bundle(location, expected_digest)
    if not location.is_file():
        raise BundleError(f"model bundle {location} does not exist")
    archive_digest = sha256_file(location)
    if expected_archive_sha256 and archive_digest != expected_archive_sha256:
        raise BundleIntegrityError(
            f"bundle archive {location} has sha256 {archive_digest[:12]}, not the registered "
            f"{expected_archive_sha256[:12]}: it was replaced after registration and was not "
            "opened"
        )
    target = cache_dir / f"bundle-{archive_digest[:32]}"
    if not target.exists():
        unpack_bundle(location, target)
    verified = verify_bundle(target, expected_digest)
    return dataclasses.replace(verified, archive_sha256=archive_digest)
