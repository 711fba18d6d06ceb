"""A broker of the test's own: a Redis server on a free port that a test stops and starts
(never the shared one on 6379), the Celery app pointed at it, and a worker in a thread."""

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery._state import _set_task_join_will_block  # type: ignore[attr-defined]
from celery.contrib.testing.worker import start_worker
from kombu import pools

from config.celery_app import app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the test's own Redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def _reset_connections() -> None:
    """Forget the connections and producers made for the previous broker URL (Celery makes
    them lazily and keeps them; there is no public way to point a live app elsewhere)."""
    celery: Any = app
    # kombu keeps connection pools in a registry of its own, per broker URL: empty it (a pool
    # closed but left there would be handed out again, closed, to whatever sends next).
    pools.reset()
    celery._pool = None
    celery.amqp._producer_pool = None


@contextmanager
def broker(workdir: Path) -> Iterator[OwnRedis]:
    """Celery sends to a Redis of this test's own (running), not eagerly; restored after."""
    redis = OwnRedis(workdir)
    redis.start()
    saved = {
        key: app.conf[key]
        for key in ("broker_url", "task_always_eager", "broker_transport_options")
    }
    _reset_connections()
    app.conf.update(
        broker_url=redis.url,
        task_always_eager=False,
        broker_transport_options={"max_retries": 0, "visibility_timeout": 60},
    )
    try:
        yield redis
    finally:
        redis.stop()
        _reset_connections()
        app.conf.update(saved)


def drain(until: Callable[[], bool], *, seconds: float = 30) -> None:
    """Run a worker (a thread of this process) until `until()` holds, at most `seconds`."""
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            deadline = time.monotonic() + seconds
            while not until():
                if time.monotonic() > deadline:
                    raise AssertionError("the worker did not get there in time")
                time.sleep(0.1)
            time.sleep(0.5)  # anything else already queued (a duplicate would show now)
    finally:
        # The worker's pool marks the whole process as inside a worker (joining a result
        # would block), and may do so after start_worker has cleared it: later tests that run
        # a task eagerly and .get() it would fail with "Never call result.get() within a task".
        _set_task_join_will_block(False)
