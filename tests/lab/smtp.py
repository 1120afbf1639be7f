"""Postfix from Debian as the SMTP servers of the lab's MX hosts, one listener per address.

Each listener offers STARTTLS with its own certificate chain, so one instance serves
the good MX, the one with an expired certificate, the one whose names do not match...
Mail is refused (no relaying, no local domains): only the TLS handshake matters here.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.lab.netns import Netns

SERVICES = """\
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def missing() -> str | None:
    return None if shutil.which("postfix") else "needs the Debian package postfix"


class Postfix:
    """A private Postfix instance in `netns`; `listeners` maps "address" to (chain file, key file),
    or to None for a listener that does not offer STARTTLS."""

    def __init__(self, netns: Netns, listeners: dict[str, tuple[Path, Path] | None]):
        self.netns = netns
        # Postfix's unprivileged daemons must reach their files: a folder of its own under /tmp.
        self.folder = folder = Path(tempfile.mkdtemp(prefix="stspolicy-postfix-"))
        folder.chmod(0o755)
        self.etc = folder / "etc"
        self.etc.mkdir(parents=True, exist_ok=True)
        (folder / "queue").mkdir(exist_ok=True)
        (folder / "data").mkdir(exist_ok=True)
        shutil.chown(folder / "data", "postfix")
        self.log = folder / "postfix.log"
        (self.etc / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {folder / 'queue'}
data_directory = {folder / 'data'}
maillog_file = {self.log}
maillog_file_prefixes = {folder}
myhostname = mx.lab.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = all
inet_protocols = ipv4
smtpd_relay_restrictions = reject
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
smtpd_tls_received_header = no
""")
        lines = [
            f"{address}:25 inet n - n - - smtpd -o smtpd_tls_chain_files={files[1]},{files[0]}" if files
            else f"{address}:25 inet n - n - - smtpd -o smtpd_tls_security_level=none"
            for address, files in listeners.items()
        ]
        (self.etc / "master.cf").write_text("\n".join(lines) + "\n" + SERVICES)
        self.process = netns.popen("postfix", "-c", str(self.etc), "start-fg",
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for address in listeners:
            self._wait_for_port(address)

    def close(self) -> None:
        """Stop the master (start-fg leaves it running on its own) and remove the instance."""
        pid_file = self.folder / "queue" / "pid" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.05)
        self.netns.stop(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _wait_for_port(self, address: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postfix exited: {self.log.read_text()[-2000:] if self.log.exists() else ''}")
            probe = self.netns.run("bash", "-c", f"exec 3<>/dev/tcp/{address}/25", check=False)
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"postfix does not listen on {address}:25")
