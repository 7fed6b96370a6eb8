"""The README's main command on a fresh machine (issue 11).

A copy of the checkout in a new private folder (``mkdtemp``: mode 0700), an empty uv cache,
run as root and as an ordinary user after root has run UTL: `uv run utl eod` must book the
sample landing folder, `uv run utl breaks` must show its breaks, and no folder that existed
before may change mode. These tests download the project's packages from PyPI.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = pytest.mark.fresh_machine

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = json.loads((ROOT / "data_samples" / "landing_expected.json").read_text())
DATE = "2024-03-07"
EOD = ["uv", "run", "--frozen", "utl", "eod", "--landing", "data_samples/landing", "--date", DATE]
BREAKS = ["uv", "run", "--frozen", "utl", "breaks", "--date", DATE, "--format", "csv"]
# What a fresh login shell would have: no venv, no UTL or uv settings of the caller's.
DROPPED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_", "UTL_", "DAGSTER_", "PYENV", "TEST_DATABASE_URL", "TMPDIR")


def uv_binary() -> Path:
    """The real uv executable (`uv run` names it in $UV; a pyenv shim would need root's home)."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.skip("uv is not installed")
    return Path(found).resolve()


def copy_checkout(dest: Path) -> None:
    """The checkout's files as a clone would have them (tracked and new, never .venv)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: nothing to copy as a clone")
    for name in listed.stdout.decode().split("\0"):
        source = ROOT / name
        if name and source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def fresh_env(home: Path, uv_dir: Path, cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    env["PATH"] = os.pathsep.join([str(uv_dir), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin",
                                   "/bin"])
    return env | {"HOME": str(home), "UV_CACHE_DIR": str(cache)} | extra


def modes_under(*tops: Path) -> dict[Path, int]:
    """Modes of the given folders, every folder above them and every folder below them."""
    paths = {p for top in tops for p in (top, *top.parents)}
    for top in tops:
        paths.update(p for p in top.rglob("*") if p.is_dir() and not p.is_symlink())
    return {p: p.stat().st_mode for p in paths}


def run(args: list[str], cwd: Path, env: dict[str, str], user: pwd.struct_passwd | None = None
        ) -> subprocess.CompletedProcess:
    switch = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **switch)


def check_readme_commands(clone: Path, env: dict[str, str], data_folder: Path,
                          user: pwd.struct_passwd | None = None) -> None:
    done = run(EOD, clone, env, user)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"database: embedded PostgreSQL in {data_folder / 'pgdata'} (database utl_landing_" in done.stderr
    shown = run(BREAKS, clone, env, user)
    assert shown.returncode == 0, shown.stderr
    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    got = sorted((r["venue"], r["account"], r["asset"], Decimal(r["diff"])) for r in rows)
    assert got == sorted((b["venue"], b["account"], b["asset"], Decimal(b["diff"])) for b in EXPECTED["breaks"][DATE])


@pytest.mark.skipif(os.geteuid() != 0, reason="runs as root; the ordinary-user case is the next test")
def test_readme_command_as_root_in_a_private_folder() -> None:
    base = Path(tempfile.mkdtemp(prefix="utl-clone-"))  # mode 0700, as a root home or mkdtemp
    cache = Path(tempfile.mkdtemp(prefix="utl-uv-cache-"))
    home = Path(tempfile.mkdtemp(prefix="utl-root-home-"))  # private: the default would be /var/lib/utl
    # A folder UTL creates itself (so 0755: user 'pgserver' can enter it), kept off the machine's own.
    data_folder = Path(tempfile.gettempdir()) / f"utl-fresh-{uuid.uuid4().hex[:8]}" / "home"
    try:
        clone = base / "utl"
        copy_checkout(clone)
        before = modes_under(base, cache, home)
        check_readme_commands(clone, fresh_env(home, uv_binary().parent, cache, UTL_HOME=str(data_folder)),
                              data_folder)
        after = modes_under(base, cache, home)
        assert {p: m for p, m in after.items() if p in before} == before
    finally:
        for folder in (base, cache, home, data_folder.parent):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ordinary_user() -> pwd.struct_passwd | None:
    """A new user with a private home when running as root; None (this user) otherwise."""
    if os.geteuid() != 0:
        yield None
        return
    if shutil.which("useradd") is None:
        pytest.skip("running as root without useradd: no ordinary user can be made")
    name = f"utl{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"useradd failed: {made.stderr.strip()}")
    user = pwd.getpwnam(name)
    Path(user.pw_dir).chmod(0o700)  # a private home, whatever the system's default
    try:
        yield user
    finally:
        subprocess.run(["pkill", "-KILL", "-u", str(user.pw_uid)], capture_output=True)
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def test_readme_command_as_an_ordinary_user_after_root(ordinary_user: pwd.struct_passwd | None,
                                                       embedded_url: str) -> None:
    """As a user in their own private home; under root, root's embedded server (the
    session's) has already run, which once locked users out through /tmp/.lockfile."""
    user = ordinary_user or pwd.getpwuid(os.geteuid())
    home = Path(user.pw_dir) if ordinary_user else Path(tempfile.mkdtemp(prefix="utl-user-home-"))
    base = Path(tempfile.mkdtemp(prefix="utl-clone-", dir=home))
    try:
        clone, cache, tools = base / "utl", base / "uv-cache", base / "bin"
        copy_checkout(clone)
        cache.mkdir()
        tools.mkdir()
        shutil.copy2(uv_binary(), tools / "uv")  # root's uv lives under root's private home
        if ordinary_user:
            for path in (base, *base.rglob("*")):
                os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
        before = modes_under(base)
        env = fresh_env(home, tools, cache, USER=user.pw_name, LOGNAME=user.pw_name)
        check_readme_commands(clone, env, home / ".local" / "share" / "utl", ordinary_user)
        assert {p: m for p, m in modes_under(base).items() if p in before} == before
    finally:
        if not ordinary_user:
            shutil.rmtree(home, ignore_errors=True)
        else:
            shutil.rmtree(base, ignore_errors=True)
