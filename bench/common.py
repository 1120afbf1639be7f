"""Helpers shared by the benchmarks: wrk runs and their parsed figures."""

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
