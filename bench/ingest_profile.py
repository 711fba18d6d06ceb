"""Where the time of one usage event goes: cProfile over in-process requests (Django's test
client, no network) against the bench database. Run by `ingest_bench.py --profile`."""

import cProfile
import json
import pstats
import sys
import time

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

settings.ALLOWED_HOSTS = ["*"]
key = sys.argv[1]
client = Client(headers={"authorization": f"Bearer {key}"})
counter = 0


def event() -> dict:
    global counter
    counter += 1
    return {
        "idempotency_key": f"p-{counter}",
        "action": "chat",
        "quantity": 1,
        "input_tokens": 1200,
        "output_tokens": 300,
        "labels": {"project": "bench"},
    }


def single() -> None:
    response = client.post("/api/v1/usage-events", json.dumps(event()), "application/json")
    assert response.status_code == 201, response.content


def batch() -> None:
    body = json.dumps({"events": [event() for _ in range(1000)]})
    response = client.post("/api/v1/usage-events/batch", body, "application/json")
    assert response.status_code == 200, response.content


def ceiling() -> None:
    response = client.post("/bench/ceiling", json.dumps(event()), "application/json")
    assert response.status_code == 201, response.content


for name, fn, n in (("single", single, 200), ("ceiling", ceiling, 200), ("batch", batch, 5)):
    fn()  # warm
    seen: list[str] = []

    def record(execute, sql, params, many, context, seen=seen):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        fn()
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    for _ in range(n):
        fn()
    profile.disable()
    elapsed = time.perf_counter() - start
    print(
        f"\n=== {name}: {n} requests, {elapsed / n * 1000:.2f} ms each (profiled), "
        f"{len(seen)} queries each"
    )
    for sql in seen:
        print("   ", sql[:110])
    pstats.Stats(profile).sort_stats("cumulative").print_stats(35)
