from collections.abc import Iterator

import pytest
from django.test import Client

from config.celery_app import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed_broker() -> Iterator[None]:
    """Celery pointed at a local port where nothing listens (port 1 needs root to bind)."""
    saved = celery_app.conf.broker_url
    celery_app.conf.update(broker_url="redis://127.0.0.1:1/0")
    try:
        yield
    finally:
        celery_app.conf.update(broker_url=saved)


def test_healthz_ok() -> None:
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_503_when_the_broker_is_unreachable(closed_broker: None) -> None:
    response = Client().get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "broker": "unreachable"}


def test_healthz_needs_no_credentials_and_only_answers_get() -> None:
    assert Client().post("/healthz").status_code == 405
