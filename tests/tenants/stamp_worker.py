"""A second process standing in for another gunicorn or Celery worker, with caches of its own.

The parent test (transaction=True, so its writes are committed) starts it on the test database
and sends it one JSON line per request; it answers one JSON line, with the number of queries
the request took. Run as `python -m tests.tenants.stamp_worker <database name>`.
"""

import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from types import TracebackType
from typing import Any

from tests.subprocess_env import ROOT


class StampWorker:
    """The parent's handle on the child: `with StampWorker(db_name) as worker: worker.get(...)`."""

    def __init__(self, db_name: str) -> None:
        self.db_name = db_name
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> "StampWorker":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.tenants.stamp_worker", self.db_name],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.call(op="ping") == {"pong": True}
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is None:
            return
        with contextlib.suppress(BrokenPipeError, RuntimeError):
            self.call(op="quit")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def call(self, **message: Any) -> dict[str, Any]:
        if self.process is None or self.process.stdin is None or self.process.stdout is None:
            raise RuntimeError("the worker is not running")
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker exited with {self.process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def get(self, path: str, key: str) -> dict[str, Any]:
        """{"status", "body", "queries"} of GET `path` with `key`, in the worker."""
        return self.call(op="get", path=path, key=key)

    def price(self, tenant_id: int, action: str, at: datetime | None = None) -> dict[str, Any]:
        """{"version", "credits", "queries"} of ratecards.selectors.price in the worker."""
        return self.call(
            op="price", tenant_id=tenant_id, action=action, at=at.isoformat() if at else None
        )

    def cost_catalog(self) -> dict[str, Any]:
        """{"number", "queries"}: the cost catalog version in force now, in the worker."""
        return self.call(op="cost_catalog")

    def until(self, predicate: Any, **message: Any) -> tuple[dict[str, Any], float]:
        """Repeats `message` until predicate(answer); the answer and the seconds it took."""
        started = time.monotonic()
        while True:
            answer = self.call(**message)
            elapsed = time.monotonic() - started
            if predicate(answer) or elapsed > 5:
                return answer, elapsed
            time.sleep(0.01)


def _serve(db_name: str) -> None:  # pragma: no cover - runs in the child
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = db_name
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.utils import timezone

    from ratecards.selectors import cost_catalog_in_force, price
    from tenants.models import Tenant

    setup_test_environment()
    client = Client()

    def handle(message: dict[str, Any]) -> dict[str, Any]:
        op = message["op"]
        if op == "ping":
            return {"pong": True}
        with CaptureQueriesContext(connection) as queries:
            if op == "get":
                response = client.get(
                    message["path"], HTTP_AUTHORIZATION=f"Bearer {message['key']}"
                )
                answer = {"status": response.status_code, "body": response.json()}
            elif op == "price":
                at = message["at"]
                quote = price(
                    tenant=Tenant(pk=message["tenant_id"]),
                    action=message["action"],
                    model_class=None,
                    quantity=1,
                    at=datetime.fromisoformat(at) if at else timezone.now(),
                )
                answer = {"version": quote.version.number, "credits": str(quote.credits)}
            elif op == "cost_catalog":
                answer = {"number": cost_catalog_in_force(at=timezone.now()).number}
            else:
                raise ValueError(op)
        return {**answer, "queries": len(queries)}

    for line in sys.stdin:
        message = json.loads(line)
        if message["op"] == "quit":
            break
        sys.stdout.write(json.dumps(handle(message)) + "\n")
        sys.stdout.flush()
    connection.close()


if __name__ == "__main__":
    _serve(sys.argv[1])
