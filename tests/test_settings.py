"""Settings come from the environment: the embedded default without it, servers with it, and
production settings that pass `check --deploy`."""

import hashlib
import json
import secrets
from pathlib import Path

import pytest

from tests.subprocess_env import run_python

PROBE = """
import json, django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "host": db.get("HOST", ""),
    "port": db.get("PORT", ""), "server_dir": db.get("SERVER_DIR", ""),
    "conn_max_age": db["CONN_MAX_AGE"],
    "broker": settings.CELERY_BROKER_URL, "debug": settings.DEBUG,
    "transport": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
}))
"""


def _probe(env: dict[str, str]) -> dict[str, object]:
    result = run_python(["-c", PROBE], env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_no_env_means_the_embedded_default(tmp_path: Path) -> None:
    settings = _probe(
        {"DJANGO_SETTINGS_MODULE": "config.settings.local", "CREDITLINE_VAR_DIR": str(tmp_path)}
    )

    digest = hashlib.sha256(str(tmp_path.resolve()).encode()).hexdigest()[:16]
    assert settings["engine"] == "config.embedded_db"
    assert (settings["name"], settings["host"], settings["port"]) == (
        "creditline",
        f"/tmp/creditline-pg-{digest}",
        "5432",
    )
    assert settings["server_dir"] == str(tmp_path.resolve() / "pg")
    assert settings["conn_max_age"] == 60
    assert settings["broker"] == "filesystem://"
    assert settings["debug"] is True
    assert settings["transport"] == {
        "data_folder_in": str(tmp_path / "broker" / "queue"),
        "data_folder_out": str(tmp_path / "broker" / "queue"),
        "processed_folder": str(tmp_path / "broker" / "processed"),
        "control_folder": str(tmp_path / "broker" / "control"),
        "store_processed": False,
    }


def test_the_embedded_socket_fits_from_a_deeply_nested_clone(tmp_path: Path) -> None:
    var_dir = tmp_path.joinpath(*["a-rather-long-directory-name"] * 12, "var")

    settings = _probe(
        {"DJANGO_SETTINGS_MODULE": "config.settings.local", "CREDITLINE_VAR_DIR": str(var_dir)}
    )

    assert len(str(var_dir)) > 300
    assert len(f"{settings['host']}/.s.PGSQL.5432") == 49


def test_sqlite_is_refused(tmp_path: Path) -> None:
    result = run_python(
        ["-c", PROBE],
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "CREDITLINE_VAR_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        },
    )

    assert result.returncode != 0
    assert (
        "DATABASE_URL must be a PostgreSQL URL (postgres://...), not sqlite: PostgreSQL is the"
        " only database engine (unset it for the embedded one)." in result.stderr
    )


def test_settings_import_writes_nothing(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"

    _probe({"DJANGO_SETTINGS_MODULE": "config.settings.local", "CREDITLINE_VAR_DIR": str(var_dir)})

    assert not var_dir.exists()


def test_env_selects_postgresql_and_redis(tmp_path: Path) -> None:
    settings = _probe(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "CREDITLINE_VAR_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://billing:pw@db.internal:5432/creditline",
            "CELERY_BROKER_URL": "redis://cache.internal:6379/0",
            "DJANGO_DEBUG": "false",
        }
    )

    assert settings["engine"] == "django.db.backends.postgresql"
    assert (settings["name"], settings["host"]) == ("creditline", "db.internal")
    assert settings["broker"] == "redis://cache.internal:6379/0"
    # Redis: a killed worker's tasks come back within a minute; sends fail fast (the outbox).
    assert settings["transport"] == {
        "visibility_timeout": 45,
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        "max_retries": 0,
    }
    assert settings["debug"] is False


def _production_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "billing.example.com",
        "CREDITLINE_VAR_DIR": str(tmp_path),
        "STRIPE_SECRET_KEY": "sk_live_placeholder",
        "STRIPE_WEBHOOK_SECRET": "whsec_placeholder",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
    }


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_its_secrets(tmp_path: Path, missing: str) -> None:
    env = _production_env(tmp_path)
    del env[missing]

    result = run_python(["-c", PROBE], env)

    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_production_passes_check_deploy(tmp_path: Path) -> None:
    result = run_python(["manage.py", "check", "--deploy"], _production_env(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced).", result.stderr
    assert "WARNING" not in result.stderr


def test_production_check_deploy_refuses_a_cache_the_hosts_do_not_share(tmp_path: Path) -> None:
    env = _production_env(tmp_path)
    del env["CACHE_URL"]  # the default: files under var/

    result = run_python(["manage.py", "check", "--deploy"], env)

    assert result.returncode != 0
    assert "tenants.E001" in result.stderr
    assert "Set CACHE_URL to Redis" in result.stderr
