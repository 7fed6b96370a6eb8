"""Where UTL keeps its files: the embedded database, Parquet outputs, ingest memory.

``UTL_HOME`` when set; otherwise the platform's per-user data folder
(``$XDG_DATA_HOME/utl``, else ``~/.local/share/utl``), which survives a reboot, unlike the
system's temporary folder. Root is the exception when that folder lies behind one that
others cannot traverse (``/root`` is usually ``0700``): the embedded PostgreSQL runs as an
unprivileged user who must reach its data, and UTL never opens a folder it did not create,
so root's data goes to the system folder ``/var/lib/utl`` instead.

Folders UTL creates get ``0700`` for a user (nobody else needs them) and ``0755`` for root
(the server's user must traverse them). An existing folder's mode is never changed.

Inside it, each landing folder has its own place (``landings/<id>/``) so that two landing
folders, or two checkouts, never mix their outputs.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

HOME_ENV = "UTL_HOME"
SYSTEM_HOME = Path("/var/lib/utl")
LAST_LANDING = "last_landing"


def make_folders(path: Path, mode: int) -> None:
    """Create ``path`` and its missing parents with exactly ``mode``, whatever the umask."""
    for folder in reversed([p for p in (path, *path.parents) if not p.exists()]):
        try:
            folder.mkdir()
        except FileExistsError:  # created meanwhile by someone else: not ours to chmod
            continue
        folder.chmod(mode)


def others_can_traverse(path: Path) -> bool:
    """True when others may pass through every existing folder from ``path`` up to ``/``."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents) if p.exists())


def default_home(*, root: bool, home: Path, xdg_data_home: str | None, system: Path = SYSTEM_HOME) -> Path:
    """The data folder when ``UTL_HOME`` is unset (see the module doc); touches nothing."""
    # The XDG spec ignores a relative XDG_DATA_HOME.
    base = Path(xdg_data_home) if xdg_data_home and os.path.isabs(xdg_data_home) else home / ".local" / "share"
    user_home = base / "utl"
    if root and not others_can_traverse(user_home):
        return system
    return user_home


def utl_home() -> Path:
    """UTL's data folder, created if missing (see the module doc)."""
    configured = os.environ.get(HOME_ENV, "").strip()
    root = os.geteuid() == 0
    if configured:
        folder = Path(configured).expanduser().absolute()
    else:
        folder = default_home(root=root, home=Path.home(), xdg_data_home=os.environ.get("XDG_DATA_HOME"))
    make_folders(folder, 0o755 if root else 0o700)
    return folder


def landing_id(landing: Path) -> str:
    """A short stable id of a landing folder: its name as a slug and a hash of its absolute path.

    Safe as a PostgreSQL identifier after a ``utl_`` prefix (lowercase, at most 49 chars).
    """
    resolved = str(landing.expanduser().resolve())
    slug = re.sub(r"[^a-z0-9]+", "_", Path(resolved).name.lower()).strip("_")[:40] or "root"
    return f"{slug}_{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"


def landing_key(landing: Path) -> str:
    """How the database names a landing folder: its absolute path. ``utl.runs``,
    ``utl.day_runs`` and every per-date result table (``landing``, 008_landing_keys) use it,
    so two landing folders in one shared database keep their rows apart."""
    return str(landing.resolve())


def landing_home(landing: Path) -> Path:
    """``<UTL_HOME>/landings/<id>/``: that landing's Parquet outputs (``storage/``) and memory."""
    return utl_home() / "landings" / landing_id(landing)


def record_last_landing(landing: Path) -> None:
    """Remember ``landing`` as the last one ``utl eod`` ran, for commands without ``--landing``."""
    target = utl_home() / LAST_LANDING
    temporary = target.with_name(f".{LAST_LANDING}.{os.getpid()}")
    temporary.write_text(str(landing.expanduser().resolve()) + "\n")
    temporary.replace(target)  # atomic: a reader never sees half a path


def last_landing() -> Path | None:
    """The landing folder ``utl eod`` ran last with this ``UTL_HOME``, if any."""
    try:
        text = (utl_home() / LAST_LANDING).read_text().strip()
    except FileNotFoundError:
        return None
    return Path(text) if text else None
