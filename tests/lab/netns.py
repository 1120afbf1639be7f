"""A private network namespace for tests: its own loopback, resolv.conf and servers.

Inside it, servers may take the well-known ports (53, 25, 443) on any 127.0.0.0/8
address without meeting other test runs, and nothing can leave the machine. Commands
run inside with `ip netns exec` (which also bind-mounts /etc/netns/<name>/resolv.conf);
Python code of the test process runs inside with `entered()`, which moves only the
calling thread.
"""

import contextlib
import ctypes
import os
import shutil
import subprocess
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def available() -> str | None:
    """None when network namespaces can be made here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "needs the `ip` command (Debian package iproute2)"
    return None


def unique_name(prefix: str = "stsp") -> str:
    """A namespace name no other test process on this machine uses (pid and xdist worker)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{prefix}-{os.getpid()}-{worker}"


class Netns:
    """A named network namespace with loopback up; `close()` stops what it started and deletes it."""

    def __init__(self, name: str | None = None, nameserver: str | None = None):
        self.name = name or unique_name()
        self.etc = Path("/etc/netns") / self.name
        self._processes: list[subprocess.Popen] = []
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        try:
            self.run("ip", "link", "set", "lo", "up")
            self.etc.mkdir(parents=True, exist_ok=True)
            (self.etc / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
            if nameserver:
                self.set_nameserver(nameserver)
        except BaseException:
            self.close()
            raise

    def set_nameserver(self, address: str) -> None:
        """resolv.conf for programs started with `ip netns exec` (glibc keeps AD with trust-ad)."""
        (self.etc / "resolv.conf").write_text(
            f"nameserver {address}\noptions edns0 trust-ad timeout:2 attempts:2\n"
        )

    def command(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(*args), check=check, timeout=timeout, **kwargs)

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        """Start a long-running server inside; it is stopped by `close()`."""
        process = subprocess.Popen(self.command(*args), **kwargs)
        self._processes.append(process)
        return process

    @contextlib.contextmanager
    def entered(self):
        """Run the calling thread inside the namespace: sockets made here live there."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield self
            finally:
                _setns(own)
        finally:
            os.close(target)
            os.close(own)

    def stop(self, *processes: subprocess.Popen) -> None:
        """Terminate processes started with `popen` (all of them when none are named)."""
        for process in reversed(processes or tuple(self._processes)):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self._processes.remove(process)

    def close(self) -> None:
        self.stop()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")
