"""A private Knot DNS server on a loopback port serving one test zone."""

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import pytest

from tests.support.servers import free_port

CONFIG = """
server:
    rundir: "{folder}"
    listen: 127.0.0.1@{port}
database:
    storage: "{folder}"
log:
  - target: stderr
    any: error
zone:
  - domain: {zone}
    file: "{folder}/zone"
"""


def txt(value: str) -> str:
    """A TXT value in zone-file form, split into 255-byte character strings."""
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))


@contextlib.contextmanager
def knot(zone: str, records: list[str]):
    """Serve `zone` with `records` (zone-file lines relative to it); yields the nameserver "127.0.0.1:port"."""
    binary = shutil.which("knotd") or "/usr/sbin/knotd"
    if not Path(binary).exists():
        pytest.skip("needs knotd (Debian package knot)")
    folder = Path(tempfile.mkdtemp(prefix="stspolicy-knot-"))
    port = free_port()
    (folder / "zone").write_text("\n".join([
        f"$ORIGIN {zone}.", "$TTL 60",
        f"@ SOA ns.{zone}. hostmaster.{zone}. 1 60 60 600 60", f"@ NS ns.{zone}.", "ns A 127.0.0.1", *records, "",
    ]))
    (folder / "knot.conf").write_text(CONFIG.format(folder=folder, port=port, zone=zone))
    process = subprocess.Popen([binary, "-c", str(folder / "knot.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_answer(port, zone, process)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_answer(port: int, zone: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"knotd exited with {process.returncode}")
        with contextlib.suppress(Exception):
            dns.query.udp(dns.message.make_query(zone, "SOA"), "127.0.0.1", port=port, timeout=0.5)
            return
        time.sleep(0.1)
    raise TimeoutError("knotd did not answer")
