"""`/api/schema/` and `/api/docs/` exist only when `CREDITLINE_API_DOCS` allows them: on in
development and tests, off in production unless the environment turns them on."""

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.subprocess_env import run_python

pytestmark = pytest.mark.django_db

PROBE = "import django; django.setup(); from django.conf import settings; "
PROBE += "print(settings.CREDITLINE_API_DOCS)"


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_off_the_schema_and_docs_are_a_json_404(settings: Any, url: str) -> None:
    settings.CREDITLINE_API_DOCS = False

    response = Client().get(url)

    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json() == {"error": {"code": "not_found", "message": "No such resource."}}


@pytest.mark.parametrize(
    ("url", "content_type"),
    [("/api/schema/?format=json", "application/vnd.oai.openapi+json"), ("/api/docs/", "text/html")],
)
def test_on_they_are_served(settings: Any, url: str, content_type: str) -> None:
    settings.CREDITLINE_API_DOCS = True

    response = Client().get(url)

    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)


def _setting(tmp_path: Path, module: str, **env: str) -> bool:
    base = {"DJANGO_SETTINGS_MODULE": module, "CREDITLINE_VAR_DIR": str(tmp_path)}
    if module.endswith("production"):
        base |= {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "billing.example.com",
        }
    result = run_python(["-c", PROBE], {**base, **env})
    assert result.returncode == 0, result.stderr
    return bool(json.loads(result.stdout.strip().splitlines()[-1].lower()))


def test_the_default_is_on_in_development_and_tests_and_off_in_production(
    tmp_path: Path, settings: Any
) -> None:
    assert _setting(tmp_path, "config.settings.local") is True
    assert _setting(tmp_path, "config.settings.production") is False
    assert _setting(tmp_path, "config.settings.production", CREDITLINE_API_DOCS="true") is True
    assert settings.CREDITLINE_API_DOCS is True  # this test run's own settings
