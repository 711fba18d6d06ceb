"""What every benchmark shares: its own database, gunicorn, wrk, pgbench, CPU and the table.

No Django here (the harnesses that need it import it themselves), so the command builders and
the table formatter can be imported and tested without a database.
"""

import os
import re
import signal
import socket
import statistics
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SETTINGS = "bench.ingest_settings"
PGBENCH_FALLBACK = "/usr/lib/postgresql/15/bin/pgbench"


def bench_db_name(pid: int | None = None) -> str:
    """One database per benchmark process, so two runs never share or drop each other's."""
    return f"creditline_bench_{os.getpid() if pid is None else pid}"


def bench_env(db: str) -> dict[str, str]:
    """The environment of every bench process (this one, gunicorn, spawned workers)."""
    return {
        **os.environ,
        "DATABASE_URL": f"{PG}/{db}",
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "PYTHONPATH": str(ROOT),
    }


def psql(sql: str, db: str = "postgres") -> str:
    done = subprocess.run(
        ["psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    return done.stdout


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def bench_database(*, keep: bool = False) -> Iterator[str]:
    """Create `creditline_bench_<pid>`, yield its name, drop it at the end: also on Ctrl-C
    and SIGTERM (turned into KeyboardInterrupt so every `finally` on the way runs)."""
    db = bench_db_name()
    previous = signal.signal(signal.SIGTERM, _terminate)
    psql(f"CREATE DATABASE {db}")
    try:
        yield db
    finally:
        if keep:
            print(f"kept database {db}", flush=True)
        else:
            psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        signal.signal(signal.SIGTERM, previous)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gunicorn_command(port: int, workers: int) -> list[str]:
    return [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--no-control-socket",
        "--log-level",
        "warning",
    ]


@contextmanager
def gunicorn(env: dict[str, str], *, workers: int) -> Iterator[int]:
    """Start gunicorn (its own session) on a free loopback port, yield the port, stop it."""
    port = free_port()
    server = subprocess.Popen(
        gunicorn_command(port, workers), cwd=ROOT, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not come up") from None
                time.sleep(0.3)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)


def drain(port: int, workers: int, timeout: float = 300) -> None:
    """Wait until gunicorn has worked off what wrk left in flight: a sync worker still runs a
    request whose client went away, so without this a slow phase (batches) eats into the
    next. `workers` concurrent health checks return only after the queue before them."""

    def ping() -> None:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout).read()

    pool = [threading.Thread(target=ping) for _ in range(workers)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    created: int  # 201 responses (a new event)
    replayed: int  # 200 responses (a replay, or a GET)

    def per_second(self, per_request: int = 1) -> float:
        return self.requests * per_request / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Wrk:
    """wrk (a separate process, loopback only) against one gunicorn, with one API key."""

    port: int
    key: str
    connections: int = 8
    threads: int = 2
    workers: int = 4  # gunicorn's, to drain after each phase

    def event(self, prefix: str, thread: int, n: int) -> bytes:
        """The body bench/ingest.lua sends for key n of a thread, byte for byte."""
        key = f"{prefix}-{thread}-{n}"
        return (
            f'{{"idempotency_key":"{key}","action":"chat","quantity":1,'
            '"input_tokens":1200,"output_tokens":300,"labels":{"project":"bench"}}'
        ).encode()

    def post_keys(self, prefix: str, per_thread: int) -> int:
        """POST the events wrk's threads will replay with `key_cycle=per_thread`; how many
        were new (201)."""
        created = 0
        for thread in range(1, self.threads + 1):
            for n in range(per_thread):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.port}/api/v1/usage-events",
                    data=self.event(prefix, thread, n),
                    headers={
                        "Authorization": f"Bearer {self.key}",
                        "Content-Type": "application/json",
                    },
                )
                with urllib.request.urlopen(request, timeout=60) as response:
                    created += response.status == 201
        return created

    def command(self, mode: str, *, prefix: str, duration: float, key_cycle: int = 0) -> list[str]:
        """wrk driving bench/ingest.lua in `mode` (single, batch, ceiling, rawbatch); keys are
        `<prefix>-<thread>-<n>`, n cycling over `key_cycle` keys per thread if it is set."""
        return [
            "wrk",
            "-t",
            str(self.threads),
            "-c",
            str(self.connections),
            "-d",
            f"{max(1, round(duration))}s",
            "--timeout",
            "30s",
            "-s",
            str(ROOT / "bench" / "ingest.lua"),
            f"http://127.0.0.1:{self.port}",
            "--",
            mode,
            self.key,
            prefix,
            str(key_cycle),
        ]

    def run(
        self, mode: str, *, prefix: str, duration: float, key_cycle: int = 0, warmup: bool = False
    ) -> WrkResult:
        """One phase, then wait for gunicorn to be idle; a measured phase (not a warm-up)
        that completed no request raises."""
        cmd = self.command(mode, prefix=prefix, duration=duration, key_cycle=key_cycle)
        out = subprocess.run(cmd, check=True, timeout=duration + 90, capture_output=True, text=True)
        drain(self.port, self.workers)
        result = parse_wrk(out.stdout)
        if result.requests == 0 and not warmup:
            raise RuntimeError(f"wrk {mode}: no request completed in {duration} s")
        return result


def parse_wrk(stdout: str) -> WrkResult:
    match = re.search(r"RESULT (.*)", stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{stdout}")
    r = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    return WrkResult(
        requests=r["requests"],
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        errors=r["errors_status"] + r["errors_other"],
        created=r["created"],
        replayed=r["replayed"],
    )


def pgbench_path() -> str:
    for candidate in ("pgbench", PGBENCH_FALLBACK):
        found = subprocess.run(["which", candidate], capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout.strip()
    return PGBENCH_FALLBACK


def pgbench_command(
    db: str, *, script: Path, clients: int, duration: int, threads: int = 2
) -> list[str]:
    """pgbench on the bench database: `clients` connections running `script` for `duration`
    seconds, no vacuum, no initialisation (the script's table is the bench's own)."""
    return [
        pgbench_path(),
        "-h",
        "127.0.0.1",
        "-p",
        "5432",
        "-U",
        "postgres",
        "-n",
        "-f",
        str(script),
        "-c",
        str(clients),
        "-j",
        str(min(threads, clients)),
        "-T",
        str(max(1, duration)),
        db,
    ]


def parse_pgbench_tps(stdout: str) -> float:
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", stdout)
    if match is None:
        raise RuntimeError(f"pgbench printed no tps:\n{stdout}")
    return float(match.group(1))


def run_pgbench(db: str, *, script: Path, clients: int, duration: int) -> float:
    cmd = pgbench_command(db, script=script, clients=clients, duration=duration)
    out = subprocess.run(cmd, check=True, timeout=duration + 60, capture_output=True, text=True)
    return parse_pgbench_tps(out.stdout)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (e.g. a PostgreSQL backend on this machine), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@dataclass(frozen=True)
class Row:
    """One line of the target table: the median of its rounds against its target."""

    path: str
    rounds: tuple[float, ...]
    target: str
    check: Callable[[float], bool] | None = None
    unit: str = ""
    note: str = ""

    @property
    def value(self) -> float | None:
        return median(self.rounds) if self.rounds else None

    @property
    def passed(self) -> bool | None:
        """None when not measured (a harness failed) or without a check."""
        value = self.value
        return None if value is None or self.check is None else self.check(value)


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s":
        return f"{value:.1f} s"
    return f"{value:.2f}"


def format_table(rows: Sequence[Row]) -> str:
    """The target table as Markdown: path | median | rounds | target | PASS/MISS | note."""
    lines = [
        "| path | median | rounds | target | | note |",
        "|---|---:|---|---:|---|---|",
    ]
    for row in rows:
        value = row.value
        shown = "—" if value is None else _fmt(value, row.unit)
        rounds = ", ".join(_fmt(r, row.unit) for r in row.rounds) or "—"
        verdict = {True: "PASS", False: "MISS", None: "—"}[row.passed]
        lines.append(f"| {row.path} | {shown} | {rounds} | {row.target} | {verdict} | {row.note} |")
    return "\n".join(lines)
