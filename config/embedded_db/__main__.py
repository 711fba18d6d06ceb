"""`python -m config.embedded_db run -- COMMAND...`: run COMMAND (bin/run's services) with the
embedded PostgreSQL held for its whole life, and stop the server when it ends, however it ends
(Ctrl-C, SIGTERM to this process, which passes it on) — unless a process from outside COMMAND
still uses it (a second bin/run, a `manage.py shell`): then the last of those stops it. With
DATABASE_URL set it only runs COMMAND. `stop` stops the server of this var dir; `status` tells
whether it runs."""

import os
import signal
import subprocess
import sys
from types import FrameType

from config.embedded_db import ENGINE, Server, attach, detach, start_lock

USAGE = "usage: python -m config.embedded_db run -- COMMAND [ARG...] | stop | status"
# Seconds COMMAND's processes (honcho kills stragglers after 5) get to let go of the server.
LEAVE_TIMEOUT = 15.0


def _server() -> Server | None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.conf import settings

    database = settings.DATABASES["default"]
    return Server.from_settings(database) if database["ENGINE"] == ENGINE else None


def run(command: list[str]) -> int:
    server = _server()
    if server is None:
        os.execvp(command[0], command)  # noqa: S606
    attach(server)
    print(f"Embedded PostgreSQL in {server.root} (socket in {server.socket_dir}).", flush=True)
    child = subprocess.Popen(command)  # noqa: S603

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    code = child.wait()
    if detach(server, wait=LEAVE_TIMEOUT):
        print("Embedded PostgreSQL stopped.", flush=True)
    else:
        print(
            "Embedded PostgreSQL left running: other processes still use it (it stops when the"
            " last one exits, or with `python -m config.embedded_db stop`).",
            flush=True,
        )
    return 128 - code if code < 0 else code


def main(argv: list[str]) -> int:
    match argv:
        case ["run", "--", *command] if command:
            return run(command)
        case ["stop"] | ["status"]:
            server = _server()
            if server is None:
                print("DATABASE_URL is set: no embedded PostgreSQL.")
                return 0
            if argv == ["status"]:
                pid = server.postmaster_pid()
                print(f"running (pid {pid})" if pid else "stopped", server.root)
                return 0 if pid else 3
            with start_lock(server):
                stopped = server.stop()
            print("stopped" if stopped else "was not running", server.root)
            return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
