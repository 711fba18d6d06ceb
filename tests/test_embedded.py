"""The embedded default end to end: no DATABASE_URL, a fresh var dir. The embedded PostgreSQL
starts on a process's first connection, is shared by every process using it, stops when the last
one leaves (or with bin/run), comes back after kill -9, and never touches the machine's server."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from config.embedded_db import DATABASE, Server, start_lock
from tests.subprocess_env import ROOT, run_python

KEY = re.compile(r"API key   (cl_[0-9a-f]{8}_[A-Za-z0-9_-]{43})")


def _env(var_dir: Path) -> dict[str, str]:
    return {"DJANGO_SETTINGS_MODULE": "config.settings.local", "CREDITLINE_VAR_DIR": str(var_dir)}


def _machine_databases() -> set[str]:
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname="postgres"
    ) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def _created_on_the_machine(before: set[str]) -> set[str]:
    """Databases created on the machine's server since `before`, but those other test and
    benchmark processes make meanwhile (test_creditline_<pid>, creditline_bench_<pid>)."""
    return {
        name
        for name in _machine_databases() - before
        if not re.fullmatch(r"(test_creditline|creditline_bench)_\d+", name)
    }


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state, ppid, ...), None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields


def _alive(pid: int) -> bool:
    return _stat(pid) is not None


def _children(pid: int) -> set[tuple[int, str]]:
    """pid and its descendants now, each as (pid, start time): a pid reused later differs."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        for child in parents.get(current, []):
            found.add(child)
            todo.append(child[0])
    return found


def _still_running(processes: set[tuple[int, str]]) -> list[int]:
    return [pid for pid, started in processes if (_stat(pid) or [""] * 20)[19] == started]


def _wait(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A var dir nested deep enough that a socket inside it would pass the 107-byte limit."""
    var_dir = tmp_path / ("nested-" * 12) / ("deeper-" * 12) / "var"
    var_dir.mkdir(parents=True)
    server = Server.for_var_dir(var_dir)
    yield server
    with start_lock(server):
        server.stop()


def test_migrate_and_seed_demo_on_the_embedded_postgresql(server: Server) -> None:
    var_dir = server.root.parent
    env = _env(var_dir)
    before = _machine_databases()

    migrate = run_python(["manage.py", "migrate", "--noinput", "-v", "0"], env, timeout=180)
    first = run_python(["manage.py", "seed_demo"], env, timeout=120)
    second = run_python(["manage.py", "seed_demo"], env, timeout=120)

    assert migrate.returncode == 0, migrate.stderr
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    first_key, second_key = (KEY.search(out.stdout) for out in (first, second))
    assert first_key is not None, first.stdout
    assert second_key is not None, second.stdout
    # Each command started the server on demand and stopped it when it left, the last user.
    assert server.postmaster_pid() is None
    assert not (server.socket_dir / ".s.PGSQL.5432").exists()
    assert len(str(server.socket_dir / ".s.PGSQL.5432")) < 107 < len(str(server.data))
    assert _created_on_the_machine(before) == set()
    with start_lock(server):
        server.start()
    with server.connect(DATABASE) as conn:
        tenants = conn.execute("SELECT slug FROM tenants_tenant").fetchall()
        live = conn.execute(
            "SELECT prefix FROM tenants_apikey WHERE name = 'seed_demo' AND revoked_at IS NULL"
        ).fetchall()
        # The backend is PostgreSQL's: the migrations' PostgreSQL-only triggers are there.
        triggers = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'ratecards%immutable'"
        ).fetchone()
    assert tenants == [("demo",)]
    assert triggers == (5,)
    assert live == [(second_key.group(1).split("_")[1],)]


def test_processes_share_one_server_and_the_last_one_out_stops_it(server: Server) -> None:
    env = _env(server.root.parent)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, django; django.setup(); from django.db import connection; "
            "connection.ensure_connection(); print('attached', flush=True); sys.stdin.read()",
        ],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "attached\n"
        pid = server.postmaster_pid()
        other = run_python(
            [
                "manage.py",
                "shell",
                "-c",
                "from django.db import connection; connection.cursor().execute('SELECT 1')",
            ],
            env,
        )
        assert other.returncode == 0, other.stderr
        # The second process attached to the running server and left it to the first.
        assert pid is not None
        assert server.postmaster_pid() == pid
        assert server.is_ready()
    finally:
        holder.communicate("", timeout=60)

    assert holder.returncode == 0
    assert server.postmaster_pid() is None
    assert not _alive(pid)


def test_a_server_killed_with_kill_9_is_cleared_on_the_next_start(server: Server) -> None:
    with start_lock(server):
        server.start()
    killed = server.postmaster_pid()
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    assert _wait(lambda: not _alive(killed), 10)
    assert (server.data / "postmaster.pid").exists()

    with start_lock(server):
        server.start()
    restarted = server.postmaster_pid()
    assert restarted not in (None, killed)
    assert server.is_ready()

    # A pid file naming a live process that is not the server (its pid reused after a kill):
    # PostgreSQL alone would refuse to start ("Is another postmaster running?").
    with start_lock(server):
        assert server.stop() is True
    (server.data / "postmaster.pid").write_text(f"{os.getpid()}\n{server.data}\n")
    with start_lock(server):
        server.start()
    assert server.postmaster_pid() not in (None, os.getpid())
    assert server.is_ready()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except OSError:
        return 0, b""


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_bin_run_serves_on_the_embedded_postgresql_and_stops_it(
    server: Server, stop_signal: signal.Signals
) -> None:
    var_dir = server.root.parent
    (var_dir / "db.sqlite3").write_bytes(b"SQLite format 3\x00 an old embedded database")
    port = _free_port()
    before = _machine_databases()
    log = (var_dir.parent / "run.log").open("w+")
    run = subprocess.Popen(
        [str(ROOT / "bin" / "run")],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "CREDITLINE_VAR_DIR": str(var_dir),
            "PORT": str(port),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: a Ctrl-C reaches that group
    )
    try:
        assert _wait(lambda: _get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 180), run.poll()
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        postmaster = server.postmaster_pid()
        assert postmaster is not None
        started = (_stat(postmaster) or [""] * 20)[19]
        processes = _children(run.pid) | _children(postmaster) | {(postmaster, started)}
        with server.connect(DATABASE) as conn:
            tenants = conn.execute("SELECT slug FROM tenants_tenant").fetchall()
    finally:
        if stop_signal == signal.SIGINT:
            os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            run.send_signal(signal.SIGTERM)  # to bin/run alone
        run.wait(timeout=60)
        log.seek(0)
        output = log.read()
        log.close()

    assert (status, body) == (200, b'{"status": "ok", "database": "ok", "broker": "ok"}')
    assert tenants == [("demo",)]
    # seed_demo's links point at the port served.
    assert f"portal    http://127.0.0.1:{port}/" in output
    assert len(processes) >= 10  # bin/run, honcho, gunicorn and 2 workers, celery x2, postgres
    assert f"{var_dir / 'db.sqlite3'} is no longer used" in output
    assert (var_dir / "db.sqlite3").read_bytes() == b"SQLite format 3\x00 an old embedded database"
    assert "Embedded PostgreSQL stopped." in output, output[-3000:]
    assert _still_running(processes) == []
    assert server.postmaster_pid() is None
    assert _created_on_the_machine(before) == set()
