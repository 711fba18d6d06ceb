import re

import pytest
from django.test import Client

from tests.isolation import api_routes

pytestmark = pytest.mark.django_db


def test_schema_is_openapi_3_and_lists_every_api_route() -> None:
    response = Client().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Creditline API"
    missing = []
    for route in api_routes():
        operations = schema["paths"].get(route.openapi_path, {})
        missing += [
            f"{method} {route.openapi_path}"
            for method in route.methods
            if method.lower() not in operations
        ]
    assert missing == []


def test_schema_describes_bearer_api_keys() -> None:
    schema = Client().get("/api/schema/", {"format": "json"}).json()

    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/tenant"]["get"]["security"] == [{"ApiKey": []}]


def test_docs_are_served_from_our_own_static_files() -> None:
    client = Client()
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in url for url in assets), assets
    assert [url for url in assets if url.startswith(("http:", "https:", "//"))] == []
    for url in assets:
        if url.startswith("/static/"):
            assert client.get(url).status_code == 200, url
