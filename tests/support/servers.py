"""Real servers for tests: gunicorn running the app, a private PostgreSQL, the `flask` CLI."""

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

# Whether the running test is marked slow; set by tests/conftest.py, None outside a test (bench/).
running_test_is_slow: bool | None = None


def starting(server: str) -> None:
    """Called by each helper here that starts a server: `make test-fast` leaves out the tests that do."""
    if running_test_is_slow is False:
        raise RuntimeError(f"this test starts {server}: mark it @pytest.mark.slow (see SERVER_FIXTURES in conftest.py)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 20, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {host}:{port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_for_unix_socket(path: str, timeout: float = 20, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {path}")
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {path} after {timeout}s")


def app_environment(settings: dict[str, str]) -> dict[str, str]:
    """os.environ for a child process running the app with `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "GUNICORN_"))}
    env.update(settings)
    env["PYTHONPATH"] = str(ROOT)
    return env


def flask(settings: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """Run `flask --app wsgi ARGS` as an operator would, in its own process."""
    starting("`flask` in a process of its own")
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT, env=app_environment(settings), input=input, capture_output=True, text=True, timeout=60,
    )


@contextlib.contextmanager
def gunicorn(
    settings: dict[str, str], *, workers: int = 2, extra_args: tuple[str, ...] = (), unix_socket: str | None = None,
    netns=None,
):
    """gunicorn with the project's gunicorn.conf.py on a free loopback port; yields the base URL.

    With `unix_socket` it listens there instead, as in production, and yields the socket path.
    With `netns` (a tests.lab.netns.Netns) it runs inside that namespace, so that what the
    application looks up and probes is the lab's, but accepts on a socket made out here:
    tests and browsers reach it at the yielded URL as usual.
    Returns once every worker has logged that its policies are loaded, so no request
    meets a worker that is still starting.
    """
    starting("gunicorn")
    port = free_port()
    env = app_environment(settings) | {
        "BIND": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers), "GUNICORN_ACCESS_LOG": "",
    }
    if unix_socket:
        env["GUNICORN_BIND"] = f"unix:{unix_socket}"
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *extra_args, "wsgi:app"]
    listener = socket.create_server(("127.0.0.1", port), backlog=128) if netns is not None else None
    if listener is not None:
        env["GUNICORN_BIND"] = f"fd://{listener.fileno()}"
        command = netns.command(*command)
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True,
                                   pass_fds=(listener.fileno(),) if listener else ())
        if listener is not None:
            listener.close()  # gunicorn has it now
        try:
            wait_for_log(log, process, ": policies loaded for ", workers)
            if unix_socket:
                wait_for_unix_socket(unix_socket, process=process)
                yield unix_socket
            else:
                wait_for_port("127.0.0.1", port, process=process)
                yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(process)


def start_node_sync(settings: dict[str, str], log: Path, netns=None, timeout: float = 30) -> subprocess.Popen:
    """`flask node sync` as a serving node's service runs it, its output appended to `log`; returns once it has
    synced, or found the database unreachable. The caller stops it (stop_process) or kills it."""
    starting("`flask node sync`")
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "node", "sync"]
    offset = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as output:
        process = subprocess.Popen(netns.command(*command) if netns else command, cwd=ROOT,
                                   env=app_environment(settings), stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while b": revision " not in (seen := log.read_bytes()[offset:]) and b"database unreachable" not in seen:
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"`flask node sync` did not sync: {seen[-2000:].decode(errors='replace')}")
        time.sleep(0.05)
    return process


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_log(log, process: subprocess.Popen, text: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        content = log.read()
        if content.count(text) >= count:
            return
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}: {content[-2000:]}")
        time.sleep(0.05)
    log.seek(0)
    raise TimeoutError(f"gunicorn workers not ready after {timeout}s: {log.read()[-2000:]}")


def get(url: str, host: str, timeout: float = 5) -> tuple[int, bytes]:
    """One GET on a new connection with the given Host header; (status, body)."""
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def postgresql_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@contextlib.contextmanager
def private_redis():
    """A Redis server of our own on a free loopback port, keeping nothing on disk; yields its URL."""
    starting("redis")
    server = shutil.which("redis-server")
    if not server:
        pytest.skip("needs redis-server (Debian package redis-server)")
    port = free_port()
    process = subprocess.Popen([server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, process=process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)


class PrivatePostgresql:
    """A PostgreSQL server of our own (initdb in a temporary folder, own port), for tests that stop it.

    Never the machine's shared server. As root it runs as the `postgres` user, which
    PostgreSQL requires. stop() and start() it, or freeze() and thaw() it with SIGSTOP and
    SIGCONT: a server that answers nothing while its connections stay open.
    """

    def __init__(self, folder: str, over_unix_socket: bool, primary: "PrivatePostgresql | None" = None):
        """A new cluster, or with `primary` (running) a hot standby streaming from it, copied by pg_basebackup."""
        starting("a PostgreSQL server")
        initdb, basebackup = postgresql_binary("initdb"), postgresql_binary("pg_basebackup")
        self._pg_ctl = postgresql_binary("pg_ctl")
        if not initdb or not basebackup or not self._pg_ctl:
            pytest.skip("needs initdb, pg_basebackup and pg_ctl (Debian package postgresql)")
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._folder, self._data = folder, os.path.join(folder, "data")
        self.port = free_port()
        if primary is None:
            subprocess.run([*self._as_user, initdb, "-D", self._data, "-A", "trust", "-U", "postgres", "--no-sync"],
                           check=True, capture_output=True)
        else:  # -R: standby.signal, and primary_conninfo in postgresql.auto.conf
            subprocess.run([*self._as_user, basebackup, "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                            "-D", self._data, "-R", "-X", "stream", "--no-sync"], check=True, capture_output=True)
        self.running = False
        if over_unix_socket:
            self.url = f"postgresql://postgres@/postgres?host={folder}&port={self.port}"
        else:
            self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self._folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*self._as_user, self._pg_ctl, "-D", self._data, "-o", options,
                        "-l", os.path.join(self._folder, "log"), "-w", "start"], check=True, capture_output=True)
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.thaw()
            subprocess.run([*self._as_user, self._pg_ctl, "-D", self._data, "-m", "fast", "-w", "stop"],
                           check=True, capture_output=True)
            self.running = False

    def _processes(self) -> list[int]:
        with open(os.path.join(self._data, "postmaster.pid")) as pid_file:
            postmaster = pid_file.readline().strip()
        children = subprocess.run(["pgrep", "-P", postmaster], capture_output=True, text=True).stdout.split()
        return [int(postmaster), *map(int, children)]

    def freeze(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def controlled_postgresql(over_unix_socket: bool = False):
    """A running PrivatePostgresql, removed afterwards."""
    folder = tempfile.mkdtemp(prefix="stspolicy-pg-")
    server = PrivatePostgresql(folder, over_unix_socket)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def streaming_postgresql():
    """A running PrivatePostgresql and a hot standby streaming from it, each in its own folder on its own port;
    yields (primary, standby)."""
    with controlled_postgresql() as primary:
        folder = tempfile.mkdtemp(prefix="stspolicy-pg-standby-")
        try:
            standby = PrivatePostgresql(folder, over_unix_socket=False, primary=primary)
            try:
                standby.start()
                yield primary, standby
            finally:
                standby.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def private_postgresql(over_unix_socket: bool = False):
    """A PrivatePostgresql; yields (url, stop) where stop() shuts it down."""
    with controlled_postgresql(over_unix_socket) as server:
        yield server.url, server.stop
