"""Bundle integrity: every hash checked before loading; tampered, truncated, incomplete and
pickle-bearing bundles refused with a message that says what is wrong."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from lambdaserve.kernel.bundle import (
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_FILES,
    VerifiedBundle,
    open_bundle,
    pack_bundle,
    sha256_file,
    unpack_bundle,
    verify_bundle,
)
from lambdaserve.kernel.errors import BundleError, BundleIntegrityError, UnsafeArtifactError
from lambdaserve.kernel.manifest import MANIFEST_FILE, ONNX_FILE, REFERENCE_FILE, SKOPS_FILE

pytestmark = pytest.mark.unit


def test_trained_bundle_verifies_and_lists_every_file(churn_bundle: VerifiedBundle) -> None:
    manifest = churn_bundle.manifest
    assert set(manifest.files) == {SKOPS_FILE, ONNX_FILE, REFERENCE_FILE}
    for name, entry in manifest.files.items():
        assert sha256_file(churn_bundle.path / name) == entry.sha256
    assert churn_bundle.digest == sha256_file(churn_bundle.path / MANIFEST_FILE)
    assert manifest.onnx.status == "ok"
    assert manifest.onnx.max_abs_diff is not None and manifest.onnx.max_abs_diff <= 1e-5


def test_flipped_byte_is_refused_as_tampered(bundle_copy: Path) -> None:
    model = bundle_copy / SKOPS_FILE
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=r"model\.skops.*sha256 \(tampered\)"):
        verify_bundle(bundle_copy)


def test_truncated_file_is_refused(bundle_copy: Path) -> None:
    onnx = bundle_copy / ONNX_FILE
    onnx.write_bytes(onnx.read_bytes()[:100])
    with pytest.raises(BundleIntegrityError, match="truncated or replaced"):
        verify_bundle(bundle_copy)


def test_missing_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / REFERENCE_FILE).unlink()
    with pytest.raises(BundleIntegrityError, match=r"incomplete: missing \['reference\.json'\]"):
        verify_bundle(bundle_copy)


def test_missing_manifest_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / MANIFEST_FILE).unlink()
    with pytest.raises(BundleError, match=r"manifest\.json is missing"):
        verify_bundle(bundle_copy)


def test_unlisted_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "notes.txt").write_text("hello")
    with pytest.raises(BundleIntegrityError, match="does not list"):
        verify_bundle(bundle_copy)


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "extra.pickle", "sub/x.PKL"])
def test_pickle_family_files_are_refused_before_anything_loads(
    bundle_copy: Path, name: str
) -> None:
    target = bundle_copy / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"\x80\x04K\x01.")  # a valid pickle of 1
    with pytest.raises(UnsafeArtifactError, match="pickle"):
        verify_bundle(bundle_copy)


def test_symlink_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "link").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeArtifactError, match="symbolic link"):
        verify_bundle(bundle_copy)


def test_edited_manifest_changes_the_digest(
    bundle_copy: Path, churn_bundle: VerifiedBundle
) -> None:
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    manifest["decision_threshold"] = 0.1
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    verify_bundle(bundle_copy)  # still self-consistent ...
    with pytest.raises(BundleIntegrityError, match="digest mismatch"):
        verify_bundle(
            bundle_copy, expected_digest=churn_bundle.digest
        )  # ... but not the published one


def test_invalid_manifest_says_which_field(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    del manifest["features"]
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="features: Field required"):
        verify_bundle(bundle_copy)


def test_pack_is_reproducible_and_round_trips(tmp_path: Path, churn_bundle: VerifiedBundle) -> None:
    first = pack_bundle(churn_bundle.path, tmp_path / "a" / "bundle.tar.gz")
    second = pack_bundle(churn_bundle.path, tmp_path / "b" / "bundle.tar.gz")
    assert sha256_file(first) == sha256_file(second)
    opened = open_bundle(first, cache_dir=tmp_path / "cache", expected_digest=churn_bundle.digest)
    assert opened.manifest == churn_bundle.manifest


def test_truncated_archive_is_refused(tmp_path: Path, churn_bundle: VerifiedBundle) -> None:
    archive = pack_bundle(churn_bundle.path, tmp_path / "bundle.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BundleError, match=r"truncated or corrupt|not a readable"):
        open_bundle(archive, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").glob("bundle-*"))


def _archive_with(tmp_path: Path, name: str, *, symlink: bool = False) -> Path:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if symlink:
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
    return archive


@pytest.mark.parametrize(
    ("name", "symlink", "message"),
    [
        ("../escape.txt", False, "escapes"),
        ("/abs.txt", False, "escapes"),
        ("link", True, "not a regular file"),
    ],
)
def test_archive_entries_cannot_escape(
    tmp_path: Path, name: str, symlink: bool, message: str
) -> None:
    with pytest.raises(UnsafeArtifactError, match=message):
        unpack_bundle(_archive_with(tmp_path, name, symlink=symlink), tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def _many_entries(tmp_path: Path, count: int) -> Path:
    """A small archive of ``count`` empty files: ~1.4 MB compressed for 300,000 entries."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for number in range(count):
            tar.addfile(tarfile.TarInfo(f"f{number}"), io.BytesIO(b""))
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=9))
    return archive


def test_an_archive_of_many_entries_is_refused_after_reading_a_few(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _many_entries(tmp_path, 5_000)
    headers_read = []
    original_next = tarfile.TarFile.next

    def counting_next(self: tarfile.TarFile) -> tarfile.TarInfo | None:
        headers_read.append(1)
        return original_next(self)

    monkeypatch.setattr(tarfile.TarFile, "next", counting_next)

    with pytest.raises(UnsafeArtifactError, match=f"more than {MAX_BUNDLE_FILES} entries"):
        unpack_bundle(archive, tmp_path / "out")

    assert len(headers_read) <= MAX_BUNDLE_FILES + 2  # not 5,000
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob("out.partial-*")), "the partial extraction is removed"


def test_an_entry_claiming_more_than_the_size_limit_is_refused_before_its_data(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "huge.tar.gz"
    info = tarfile.TarInfo("model.skops")
    info.size = MAX_BUNDLE_BYTES + 1
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    archive.write_bytes(gzip.compress(header + b"\0" * 4096))  # the data is never there

    with pytest.raises(UnsafeArtifactError, match=f"more than {MAX_BUNDLE_BYTES} bytes"):
        unpack_bundle(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
