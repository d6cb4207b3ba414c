"""Production refuses to serve half-configured; tools still load the settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * 50


def load_settings(expression: str = "settings.DEBUG", **env_overrides) -> subprocess.CompletedProcess:
    return run_python(
        f"import django; django.setup(); from django.conf import settings; print({expression})", **env_overrides
    )


def start_web_app(**env_overrides) -> subprocess.CompletedProcess:
    """Import the WSGI application as gunicorn would."""
    return run_python("import loyalty.wsgi; print('serving')", **env_overrides)


def run_python(code: str, *args, **env_overrides) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "TESTING", "SECRET_KEY"}}
    env.update(env_overrides)
    env = {key: value for key, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "loyalty.settings"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_with_only_a_secret_key_and_database_names_every_missing_step_at_once():
    """A key and a database are not enough: hosts, the public address and the collected static files are needed
    too (tests/test_production.py serves with all of them under gunicorn)."""
    result = start_web_app(
        SECRET_KEY=GOOD_KEY,
        DATABASE_URL="postgres://u@db.internal:5432/loyalty",
        ALLOWED_HOSTS=None,
        SITE_URL=None,
        STATIC_ROOT=str(ROOT / "no-such-static-root"),
    )
    assert result.returncode != 0
    for step in ("Set ALLOWED_HOSTS", "Set SITE_URL", "run `python manage.py collectstatic --noinput`"):
        assert step in result.stderr


@pytest.mark.parametrize("key", [None, "", "short", "dev-only-insecure-key-not-for-production"])
def test_production_refuses_to_serve_with_a_missing_or_weak_secret_key(key):
    result = start_web_app(SECRET_KEY=key, DATABASE_URL="postgres://u@db.internal:5432/loyalty")
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_production_refuses_to_serve_without_a_database_url():
    result = start_web_app(SECRET_KEY=GOOD_KEY, DATABASE_URL="")
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr


def test_tools_load_the_settings_with_nothing_configured():
    """`manage.py makemigrations --check` needs neither a secret nor a database."""
    result = run_python(
        "import sys; from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'makemigrations', '--check', '--dry-run'])",
        DATABASE_URL=None,
        CACHE_URL=None,
    )
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_socket_directory_in_the_url_becomes_the_host():
    result = load_settings(
        TESTING="true",
        DATABASE_URL="postgres://postgres@%2Ftmp%2Fpg%20data:5432/postgres",
        expression="settings.DATABASES['default']['HOST']",
    )
    assert result.stdout.strip() == "/tmp/pg data", result.stderr


def test_a_shared_cache_also_holds_sessions_and_without_one_sessions_stay_in_the_database():
    shared = load_settings(TESTING="true", CACHE_URL="redis://127.0.0.1:6379/9", expression="settings.SESSION_ENGINE")
    local = load_settings(TESTING="true", CACHE_URL="", expression="settings.SESSION_ENGINE")
    assert shared.stdout.strip() == "django.contrib.sessions.backends.cached_db", shared.stderr
    assert local.stdout.strip() == "django.contrib.sessions.backends.db", local.stderr
