"""Helpers shared by the benchmarks: gunicorn serving an app, wrk runs and their figures, CPU time."""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPT = """
local hosts = {%(hosts)s}
request = function()
  return wrk.format("GET", "%(path)s", {Host = hosts[math.random(#hosts)]})
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%%d errors=%%d p99_us=%%d\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(99)))
end
"""


@dataclass
class WrkResult:
    requests_per_second: float
    p99_ms: float
    errors: int
    requests: int = 0

    def __str__(self) -> str:
        return f"{self.requests_per_second:9.0f} req/s   p99 {self.p99_ms:6.2f} ms   errors {self.errors}"


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if not path:
        sys.exit(f"{binary} not found: install the Debian package {package}")
    return path


def wrk(url: str, hosts: list[str], path: str, *, seconds: int, connections: int = 16, threads: int = 1,
        prefix: tuple[str, ...] = ()) -> WrkResult:
    """Run wrk against `url`, a random Host from `hosts` on every request (`prefix`: e.g. ip netns exec)."""
    script_text = WRK_SCRIPT % {"hosts": ", ".join(f'"{host}"' for host in hosts), "path": path}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(script_text)
    try:
        output = subprocess.run(
            [*prefix, require("wrk", "wrk"), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", script.name,
             url],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        Path(script.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    figures = dict(re.findall(r"(\w+)=(\d+)", output.split("BENCH", 1)[1]))
    return WrkResult(rate, int(figures["p99_us"]) / 1000, int(figures["errors"]), int(figures["requests"]))


def summarize(results: dict[str, list[WrkResult]], ours: str, baseline: str, target: float) -> None:
    """Best of the rounds for each, and the ratio of ours to the baseline measured in the same run."""
    best = {label: max(r.requests_per_second for r in runs) for label, runs in results.items()}
    p99 = {label: min(r.p99_ms for r in runs) for label, runs in results.items()}
    rounds = len(results[ours])
    print(f"\nbest of {rounds}: {ours} {best[ours]:.0f} req/s (p99 {p99[ours]:.2f} ms), "
          f"{baseline} {best[baseline]:.0f} req/s (p99 {p99[baseline]:.2f} ms)")
    print(f"ratio {ours} / {baseline} = {best[ours] / best[baseline]:.2f}   (target >= {target})")


ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def gunicorn(app_spec: str, env: dict[str, str], workers: int, pythonpath: Path = ROOT):
    """gunicorn with the project's gunicorn.conf.py on a free loopback port; yields (base URL, master pid).

    The same settings serve the application and the bare baselines, so that they compare.
    """
    from tests.servers import free_port, wait_for_port

    port = free_port()
    settings = os.environ | env | {
        "BIND": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers), "GUNICORN_ACCESS_LOG": "",
        "PYTHONPATH": f"{pythonpath}{os.pathsep}{ROOT}",
    }
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app_spec], cwd=ROOT,
                               env=settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, process=process)
        time.sleep(3)  # every worker has imported its app and loaded its policies
        if process.poll() is not None:
            sys.exit(f"gunicorn for {app_spec} exited with {process.returncode}")
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait()


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process still running."""
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            found[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return found


def with_children(pid: int) -> list[int]:
    """`pid` and the processes it started (gunicorn's workers)."""
    children = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{entry}/stat") as stat:
            if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry))
    return [pid, *children]
