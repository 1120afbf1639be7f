"""Helpers shared by the benchmarks: gunicorn serving an app, wrk runs and their figures, CPU time."""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPT = """
local hosts = {%(hosts)s}
request = function()
  return wrk.format("GET", "%(path)s", {Host = hosts[math.random(#hosts)]})
end
%(done)s
"""
# wrk's own summary of a run, parsed by wrk_figures; every Lua script here ends with it.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d p99_us=%d status=%d connect=%d read=%d write=%d timeout=%d\\n",
    summary.requests, latency:percentile(99), e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class WrkResult:
    requests_per_second: float
    p99_ms: float
    requests: int = 0

    def __str__(self) -> str:
        return f"{self.requests_per_second:9.0f} req/s   p99 {self.p99_ms:6.2f} ms"


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if not path:
        sys.exit(f"{binary} not found: install the Debian package {package}")
    return path


def wrk(url: str, hosts: list[str], path: str, *, seconds: int, connections: int = 16, threads: int = 1,
        prefix: tuple[str, ...] = ()) -> WrkResult:
    """Run wrk against `url`, a random Host from `hosts` on every request (`prefix`: e.g. ip netns exec)."""
    script_text = WRK_SCRIPT % {"hosts": ", ".join(f'"{host}"' for host in hosts), "path": path, "done": WRK_DONE}
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
    rate, requests, p99_ms = wrk_figures(output)
    return WrkResult(rate, p99_ms, requests)


def wrk_figures(output: str) -> tuple[float, int, float]:
    """Requests per second, requests and p99 in ms of a wrk run; exits naming the errors if it had any.

    A run with errors measured something else than the path under test (refusals, timeouts
    of a server still starting), so its rate is no figure to print.
    """
    figures = {name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", output.split("BENCH", 1)[1])}
    errors = {name: figures[name] for name in ("status", "connect", "read", "write", "timeout") if figures[name]}
    if errors:
        sys.exit(f"wrk run had errors ({', '.join(f'{name} {count}' for name, count in errors.items())}; "
                 f"status: non-2xx/3xx answers):\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return rate, figures["requests"], figures["p99_us"] / 1000


def summarize(results: dict[str, list[WrkResult]], ours: str, baseline: str, target: float) -> None:
    """The best round of each (its rate and its own p99), and the ratio of ours to the baseline of the same run."""
    best = {label: max(runs, key=lambda r: r.requests_per_second) for label, runs in results.items()}
    rounds = len(results[ours])
    print(f"\nbest of {rounds}: {ours} {best[ours].requests_per_second:.0f} req/s (p99 {best[ours].p99_ms:.2f} ms), "
          f"{baseline} {best[baseline].requests_per_second:.0f} req/s (p99 {best[baseline].p99_ms:.2f} ms)")
    print(f"ratio {ours} / {baseline} = "
          f"{best[ours].requests_per_second / best[baseline].requests_per_second:.2f}   (target >= {target})")


ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


# What each worker of a bench's own bare app writes to stderr once it has imported it.
BARE_APP_LOADED = "bench app loaded"
APP_LOADED = ": policies loaded for "  # gunicorn.conf.py's post_worker_init, per worker of the application


@contextlib.contextmanager
def gunicorn(app_spec: str, env: dict[str, str], workers: int, pythonpath: Path = ROOT, loaded: str = APP_LOADED):
    """gunicorn with the project's gunicorn.conf.py on a free loopback port; yields (base URL, master pid)
    once every worker has logged `loaded`: on a busy machine workers take seconds to import their
    app, and requests queued meanwhile would time out.

    The same settings serve the application and the bare baselines, so that they compare.
    """
    from tests.support.servers import free_port, stop_process, wait_for_log, wait_for_port

    port = free_port()
    settings = os.environ | env | {
        "BIND": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers), "GUNICORN_ACCESS_LOG": "",
        "PYTHONPATH": f"{pythonpath}{os.pathsep}{ROOT}",
    }
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app_spec], cwd=ROOT,
                                   env=settings, stdout=subprocess.DEVNULL, stderr=log, text=True)
        try:
            wait_for_log(log, process, loaded, workers, timeout=300)
            wait_for_port("127.0.0.1", port, process=process)
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            stop_process(process)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process still running, with those of the children it has
    reaped: a gunicorn worker recycled during a run (max_requests) still counts, in its master."""
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            found[pid] = sum(int(value) for value in fields[11:15]) / _TICKS
    return found


def with_children(pid: int) -> list[int]:
    """`pid` and the processes it started (gunicorn's workers)."""
    children = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{entry}/stat") as stat:
            if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry))
    return [pid, *children]
