"""The README's production steps, run for real: production settings (DEBUG off) in child processes, collectstatic
into a temporary STATIC_ROOT, gunicorn serving the login pages and a static file with the security headers, and
`make production-check` (check --deploy with warnings as failures, then the start-up checks) passing clean."""

import http.client
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
HOST = "loyalty.example.com"
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0  # seconds gunicorn may take to answer (it usually takes one or two)


def _database_url() -> str:
    """The test database as a URL; HOST may be the embedded server's socket directory (percent-encoded)."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = quote(db["HOST"] or "localhost", safe="")
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def production_env(django_db_setup, tmp_path_factory) -> dict[str, str]:
    """What the README's production section tells an operator to set, and nothing of the test run's (no TESTING)."""
    return {
        "PATH": str(Path(sys.executable).parent) + ":/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path_factory.mktemp("home")),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "loyalty.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": _database_url(),
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
        "SITE_URL": f"https://{HOST}",
        "STATIC_ROOT": str(tmp_path_factory.mktemp("staticfiles")),
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
        "PRIVATE_MEDIA_ROOT": str(tmp_path_factory.mktemp("private-media")),
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
    }


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def collected_env(production_env) -> dict[str, str]:
    """The production environment after `manage.py collectstatic --noinput`."""
    result = _run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], production_env)
    assert result.returncode == 0, result.stderr
    return production_env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, *, https: bool = True, follow: bool = False) -> http.client.HTTPResponse:
    """GET `path` as the load balancer passes a browser's request on: for our host name, HTTPS ended in front;
    with `follow`, on through redirects within the site (the back office may sign in on the member login page)."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    headers = {"Host": HOST, **({"X-Forwarded-Proto": "https"} if https else {})}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    location = response.getheader("Location", "")
    if follow and response.status in (301, 302) and location.startswith(("/", f"https://{HOST}/")):
        return _get(port, location.removeprefix(f"https://{HOST}"), follow=True)
    return response


@pytest.fixture
def gunicorn(collected_env, tmp_path):
    """gunicorn serving loyalty.wsgi with the production settings on a free loopback port; yields the port."""
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    command = [sys.executable, "-m", "gunicorn", "loyalty.wsgi", "--bind", f"{LOOPBACK}:{port}", "--workers", "1"]
    with log.open("w") as output:
        process = subprocess.Popen(command, env=collected_env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, f"gunicorn exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"gunicorn did not answer:\n{log.read_text()}"
            try:
                _get(port, "/accounts/login/")
                break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)


def _assert_security_headers(response: http.client.HTTPResponse) -> None:
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains; preload"
    policy = response.getheader("Content-Security-Policy")
    assert "default-src 'self'" in policy
    assert re.search(r"script-src 'self'( 'nonce-[\w-]+')?;", policy), policy  # a nonce when the page used one
    assert "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy
    assert response.getheader("X-Frame-Options") == "DENY"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Referrer-Policy") == "same-origin"
    assert response.getheader("Cross-Origin-Opener-Policy") == "same-origin"


def test_gunicorn_with_production_settings_serves_the_login_pages_and_static_files(gunicorn):
    member_login = _get(gunicorn, "/accounts/login/")
    admin_login = _get(gunicorn, "/admin/login/", follow=True)

    assert member_login.status == 200, member_login.body[-2000:]
    assert admin_login.status == 200, admin_login.body[-2000:]
    for page in (member_login, admin_login):
        _assert_security_headers(page)
        # The CSRF cookie only travels over HTTPS.
        assert re.search(r";\s*secure\b", page.getheader("Set-Cookie"), re.IGNORECASE), page.getheader("Set-Cookie")
    # Pages link the hashed names from collectstatic's manifest, which whitenoise serves.
    stylesheet = re.search(rb'href="(/static/css/app\.[0-9a-f]{12}\.css)"', member_login.body).group(1).decode()
    css = _get(gunicorn, stylesheet)
    assert css.status == 200
    assert css.getheader("Content-Type").startswith("text/css")
    assert b".skip-link" in css.body


def test_gunicorn_with_production_settings_sends_plain_http_to_https(gunicorn):
    response = _get(gunicorn, "/accounts/login/", https=False)

    assert response.status == 301
    assert response.getheader("Location") == f"https://{HOST}/accounts/login/"


def test_production_check_passes_after_collectstatic(collected_env):
    result = _run(["make", "--no-print-directory", "production-check"], collected_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "The configuration can serve." in result.stdout


def test_production_check_refuses_uncollected_static_files_and_so_does_gunicorn(production_env, tmp_path):
    env = {**production_env, "STATIC_ROOT": str(tmp_path / "never-collected")}

    check = _run(["make", "--no-print-directory", "production-check"], env)
    wsgi = _run([sys.executable, "-c", "import loyalty.wsgi"], env)

    assert check.returncode != 0
    assert "are not collected into STATIC_ROOT" in check.stderr
    assert "run `python manage.py collectstatic --noinput`" in check.stderr
    assert wsgi.returncode != 0
    assert "ImproperlyConfigured" in wsgi.stderr
    assert "are not collected into STATIC_ROOT" in wsgi.stderr


@pytest.mark.parametrize(
    ("hsts", "silenced"),
    [
        ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "false", "SECURE_HSTS_PRELOAD": "false"}, 2),
        ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "true", "SECURE_HSTS_PRELOAD": "false"}, 1),
    ],
)
def test_check_deploy_is_clean_when_the_operator_chose_hsts_scope(production_env, hsts, silenced):
    result = _run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], {**production_env, **hsts}
    )

    assert result.returncode == 0, result.stderr
    assert f"System check identified no issues ({silenced} silenced)." in result.stdout


def test_check_deploy_reminds_an_operator_who_never_chose_hsts_scope(production_env):
    env = {
        k: v for k, v in production_env.items() if k not in ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD")
    }

    result = _run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode != 0
    assert "security.W005" in result.stderr
    assert "security.W021" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SITE_URL", "", "Set SITE_URL"),
        ("ALLOWED_HOSTS", "", "Set ALLOWED_HOSTS"),
        ("SECURE_HSTS_SECONDS", "3600", "SECURE_HSTS_PRELOAD needs"),
    ],
)
def test_production_check_refuses_a_missing_or_contradictory_setting(collected_env, variable, value, message):
    result = _run([sys.executable, "-m", "loyalty.startup"], {**collected_env, variable: value})

    assert result.returncode == 1
    assert message in result.stderr
