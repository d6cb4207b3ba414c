"""The zero-setup database runner: data kept between runs, no server left behind."""

import shutil
import subprocess
import sys
from pathlib import Path

import psutil

from loyalty.dev.embedded_db import DATA_ROOT

ROOT = Path(__file__).resolve().parents[2]


def servers_on(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(data_dir) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def run_wrapped(name: str, code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loyalty.dev.embedded_db", name, "--", sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_starts_a_server_keeps_its_data_and_stops_it(tmp_path):
    name = "selftest"
    data_dir = DATA_ROOT / name
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path)}
    write = (
        "import os, django; os.environ['DJANGO_SETTINGS_MODULE']='loyalty.settings'; os.environ['TESTING']='true';"
        "django.setup(); from django.db import connection; c = connection.cursor();"
        "c.execute('create table if not exists kept (n int)'); c.execute('insert into kept values (42)')"
    )
    read = (
        "import os, django; os.environ['DJANGO_SETTINGS_MODULE']='loyalty.settings'; os.environ['TESTING']='true';"
        "django.setup(); from django.db import connection; c = connection.cursor();"
        "c.execute('select sum(n) from kept'); print(c.fetchone()[0])"
    )
    try:
        first = run_wrapped(name, write, env)
        assert first.returncode == 0, first.stderr
        assert not servers_on(data_dir), "the server must stop when the command ends"

        second = run_wrapped(name, read, env)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip().splitlines()[-1] == "42"
        assert not servers_on(data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def test_the_command_exit_code_is_passed_on(tmp_path):
    result = run_wrapped(
        "unused", "raise SystemExit(3)", {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgres://x@127.0.0.1/none"}
    )
    assert result.returncode == 3
    assert not (DATA_ROOT / "unused").exists(), "an external DATABASE_URL must not start the embedded server"


def test_the_data_lives_in_the_project_roots_pgdata_folder_that_make_clean_db_removes():
    assert DATA_ROOT == ROOT / ".pgdata"
    assert "rm -rf .pgdata" in (ROOT / "Makefile").read_text()
