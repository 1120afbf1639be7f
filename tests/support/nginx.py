"""The shipped nginx/stspolicy.conf, rendered with test paths and ports, run by a real nginx.

Rendering only swaps the production paths, the listen addresses and the admin host name;
everything else is the file an operator installs. Each swap must find its target, so a
change to the shipped file that the tests would silently skip fails here instead.
"""

import contextlib
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab.netns import Netns
from tests.support.servers import ROOT, starting, stop_process, wait_for_port

SHIPPED = ROOT / "nginx" / "stspolicy.conf"
ADMIN_HOST = "stspolicy.example.net"


@dataclass(frozen=True)
class NginxLayout:
    """Where one rendered configuration keeps its files, and where it listens."""

    root: Path
    address: str
    https_port: int
    http_port: int
    admin_host: str = ADMIN_HOST

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def policies(self) -> Path:
        return self.state / "policies"

    @property
    def certs(self) -> Path:
        return self.state / "certs"

    @property
    def webroot(self) -> Path:
        return self.state / "acme"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "log"

    @property
    def gunicorn_socket(self) -> Path:
        return self.run / "gunicorn.sock"

    @property
    def fetch_log(self) -> Path:
        return self.logs / "stspolicy-fetch.log"

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"


@contextlib.contextmanager
def layout_folder():
    """A fresh folder that nginx workers (www-data when we are root) can traverse, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="stspolicy-nginx-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def render_site(layout: NginxLayout, text: str | None = None) -> str:
    text = SHIPPED.read_text() if text is None else text
    swaps = [
        ("/var/lib/stspolicy", str(layout.state)),
        ("/run/stspolicy", str(layout.run)),
        ("/var/log/nginx", str(layout.logs)),
        ("stspolicy.example.net", layout.admin_host),
    ]
    for old, new in swaps:
        assert old in text, f"{old} not found in {SHIPPED}"
        text = text.replace(old, new)
    text, ipv6 = re.subn(r"\n *listen \[::\]:(80|443)\b[^;]*;", "", text)
    text, http = re.subn(r"listen 80\b", f"listen {layout.address}:{layout.http_port}", text)
    text, https = re.subn(r"listen 443\b", f"listen {layout.address}:{layout.https_port}", text)
    assert ipv6 and http and https, "listen directives not found"
    return text


def write_config(layout: NginxLayout, site_text: str | None = None, extra_http: str = "") -> Path:
    """The rendered site inside a minimal main configuration, with the state folders made.

    `extra_http` goes into the same http {} block (the benchmark's static-file baseline).
    """
    for folder in (layout.policies, layout.webroot, layout.run, layout.logs, layout.root / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    layout.certs.mkdir(parents=True, exist_ok=True)
    user = ""
    if os.geteuid() == 0:
        # As in production: workers run as www-data and read keys through the group.
        user = "user www-data www-data;"
        shutil.chown(layout.certs, group="www-data")
        layout.certs.chmod(0o2750)
    site = layout.root / "stspolicy.conf"
    site.write_text(render_site(layout, site_text))
    temp = layout.root / "tmp"
    layout.conf.write_text(f"""
{user}
worker_processes 1;
pid {layout.run}/nginx.pid;
error_log {layout.logs}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {layout.logs}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
{extra_http}
}}
""")
    return layout.conf


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not path:
        pytest.skip("needs nginx (Debian package nginx-light)")
    return path


def nginx_test(layout: NginxLayout) -> subprocess.CompletedProcess:
    """`nginx -t` on the rendered configuration."""
    return subprocess.run(
        [nginx_binary(), "-t", "-e", "stderr", "-p", str(layout.root), "-c", str(layout.conf)],
        capture_output=True, text=True, timeout=30,
    )


@contextlib.contextmanager
def running_nginx(layout: NginxLayout, netns: Netns | None = None):
    """nginx in the foreground (`daemon off`) on the layout's ports, in `netns` if given; stopped on exit."""
    starting("nginx")
    command = [nginx_binary(), "-g", "daemon off;", "-e", str(layout.logs / "error.log"),
               "-p", str(layout.root), "-c", str(layout.conf)]
    with open(layout.logs / "stderr.log", "ab") as stderr:
        process = subprocess.Popen(netns.command(*command) if netns else command,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        with netns.entered() if netns else contextlib.nullcontext():
            wait_for_port(layout.address, layout.https_port, process=process)
            wait_for_port(layout.address, layout.http_port, process=process)
        yield process
    finally:
        stop_process(process)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    tls_version: str | None = None


def request(
    address: str,
    port: int,
    host: str,
    path: str = "/.well-known/mta-sts.txt",
    *,
    method: str = "GET",
    ca: Path | str | None = None,
    sni: str | None = "",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Answer:
    """One HTTP(S) request to address:port with the given Host (and SNI, by default the Host).

    HTTPS when `ca` or `tls` is given; sni=None sends no SNI at all.
    """
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(socket.create_connection((address, port), timeout=10))
        tls_version = None
        if ca is not None or tls is not None:
            context = tls or ssl.create_default_context(cafile=str(ca))
            if sni is None:
                context.check_hostname = False
            server_name = host.split(":")[0] if sni == "" else sni
            sock = stack.enter_context(context.wrap_socket(sock, server_hostname=server_name))
            tls_version = sock.version()
        connection = http.client.HTTPConnection(host)
        connection.sock = sock
        connection.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read(), tls_version)


@contextlib.contextmanager
def running_mtail(log: Path, port: int):
    """mtail counting policy fetches from nginx's fetch log with the shipped program; yields its /metrics URL."""
    starting("mtail")
    mtail = shutil.which("mtail")
    if not mtail:
        pytest.skip("needs mtail (Debian package mtail)")
    log.touch()
    command = [mtail, "-progs", str(ROOT / "nginx"), "-logs", str(log), "-address", "127.0.0.1", "-port", str(port),
               "-emit_prog_label=false", "-logtostderr"]
    with open(log.parent / "mtail.log", "ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, process=process)
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        stop_process(process)
