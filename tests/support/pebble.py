"""pebble, Let's Encrypt's ACME test server (Debian package pebble), for real ACME flows in tests.

pebble validates http-01 by fetching http://<name>:<http_port>/.well-known/acme-challenge/...
and resolves <name> through the DNS server it is given: the lab's validating resolver, or
pebble-challtestsrv answering 127.0.0.1 for every name. Its roots change on every start;
`root_pem()` fetches the one that signs what it issues.
"""

import contextlib
import json
import shutil
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab.netns import Netns
from tests.lab.pki import TestCA
from tests.support.servers import free_port, starting, stop_process, wait_for_port


@dataclass(frozen=True)
class Pebble:
    directory_url: str
    management_url: str
    ca_bundle: Path  # trusts pebble's own HTTPS listener

    def root_pem(self) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(f"{self.management_url}/roots/0", context=context, timeout=10) as response:
            return response.read()


def pebble_binaries() -> tuple[str, str]:
    pebble, challtestsrv = shutil.which("pebble"), shutil.which("pebble-challtestsrv")
    if not pebble or not challtestsrv:
        pytest.skip("needs pebble and pebble-challtestsrv (Debian package pebble)")
    return pebble, challtestsrv


@contextlib.contextmanager
def _process(command: list[str], log: Path, env: dict[str, str] | None = None):
    with open(log, "ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        stop_process(process)


@contextlib.contextmanager
def running_pebble(folder: Path, http_port: int, ca: TestCA, *, address: str = "127.0.0.1",
                   dns_server: str | None = None, netns: Netns | None = None):
    """pebble validating http-01 on `http_port`, in `netns` if given; its HTTPS listener has a certificate from `ca`.

    Names are resolved by `dns_server`; without one, pebble-challtestsrv answers 127.0.0.1 for every name.
    """
    starting("pebble")
    pebble, challtestsrv = pebble_binaries()
    folder.mkdir(parents=True, exist_ok=True)
    prefix = netns.command() if netns else []
    cert, key = ca.write_server(folder, "listener", *ca.issue(address, "localhost"))
    ca_file = ca.write_root(folder / "listener-ca.pem")
    port, management = (free_port(address), free_port(address)) if netns is None else (14000, 15000)
    (folder / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"{address}:{port}", "managementListenAddress": f"{address}:{management}",
        "certificate": str(cert), "privateKey": str(key),
        "httpPort": http_port, "tlsPort": free_port(), "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }}))
    env = {"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    with contextlib.ExitStack() as stack:
        if dns_server is None:
            dns_port = free_port()
            dns_server = f"127.0.0.1:{dns_port}"
            stack.enter_context(_process(
                [*prefix, challtestsrv, "-management", f"127.0.0.1:{free_port()}", "-dns01", dns_server,
                 "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
                folder / "challtestsrv.log"))
        process = stack.enter_context(_process(
            [*prefix, pebble, "-config", str(folder / "pebble.json"), "-dnsserver", dns_server],
            folder / "pebble.log", env))
        with netns.entered() if netns else contextlib.nullcontext():
            wait_for_port(address, port, process=process)
            wait_for_port(address, management, process=process)
        yield Pebble(f"https://{address}:{port}/dir", f"https://{address}:{management}", ca_file)
