"""A private Dovecot IMAPS server on a loopback port, for the IMAP poller's tests."""

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.lab.pki import TestCA
from tests.support.servers import free_port, starting, wait_for_port

CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain
first_valid_uid = 1
last_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={folder}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


@contextlib.contextmanager
def dovecot(ca: TestCA):
    """Yields (port, ca_file, user, password) of a running Dovecot with one empty mailbox, its certificate from `ca`."""
    starting("Dovecot")
    user, password = "reports", secrets.token_urlsafe(12)
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.path.exists(binary):
        pytest.skip("needs dovecot (Debian package dovecot-imapd)")
    folder = Path(tempfile.mkdtemp(prefix="stspolicy-dovecot-"))
    cert, key = ca.write_server(folder / "pki", "server", *ca.issue("localhost", "127.0.0.1"))
    ca_file = ca.write_root(folder / "pki" / "ca.pem")
    owner = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
    (folder / "home").mkdir()
    os.chown(folder / "home", owner.pw_uid, owner.pw_gid)
    folder.chmod(0o755)
    (folder / "passwd").write_text(f"{user}:{{PLAIN}}{password}\n")
    port = free_port()
    (folder / "dovecot.conf").write_text(CONFIG.format(
        folder=folder, cert=cert, key=key, uid=owner.pw_uid, gid=owner.pw_gid, port=port))
    process = subprocess.Popen([binary, "-F", "-c", str(folder / "dovecot.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, process=process)
        yield port, ca_file, user, password
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(folder, ignore_errors=True)
