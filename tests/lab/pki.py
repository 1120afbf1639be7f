"""The test certificate authority: a root, an intermediate, and server certificates on demand.

Every TLS server of the tests (Postfix in the lab, nginx, Dovecot, gunicorn, pebble's own
listener) presents a certificate from a `TestCA`. Certificates follow the RFC 5280 profile
that strict verifiers (cryptography's, OpenSSL's) expect. Keys can be reused across
certificates, as a renewal that keeps the key does.
"""

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class Issuer:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _builder(subject: str, public_key, issuer: Issuer | None, not_before: datetime, not_after: datetime):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject if issuer else name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    signer_key = issuer.key.public_key() if issuer else public_key
    return builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key), critical=False)


def _ca_extensions(builder, path_length: int | None):
    return builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True).add_extension(
        x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                      data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                      encipher_only=False, decipher_only=False), critical=True)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


class TestCA:
    """A root and one intermediate; `issue` signs server certificates with the intermediate."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "stspolicy Test", not_before: datetime | None = None):
        """`not_before`: since when the CA is valid, a day ago unless told (checks of the past need older)."""
        now = datetime.now(UTC)
        not_before = not_before or now - timedelta(days=1)
        self.root_key = new_key()
        root = _ca_extensions(_builder(f"{name} Root CA", self.root_key.public_key(), None,
                                       not_before, now + timedelta(days=3650)), None)
        self.root = Issuer(root.sign(self.root_key, hashes.SHA256()), self.root_key)
        intermediate_key = new_key()
        intermediate = _ca_extensions(_builder(f"{name} Intermediate CA", intermediate_key.public_key(), self.root,
                                               not_before, now + timedelta(days=1825)), 0)
        self.intermediate = Issuer(intermediate.sign(self.root_key, hashes.SHA256()), intermediate_key)

    def issue(self, *names: str, key=None, not_before: datetime | None = None,
              not_after: datetime | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A server certificate for `names`, host names or IP addresses (the first is also the CN),
        valid 90 days by default."""
        now = datetime.now(UTC)
        key = key or new_key()
        not_before = not_before or now - timedelta(hours=1)
        not_after = not_after or now + timedelta(days=90)
        builder = (
            _builder(names[0], key.public_key(), self.intermediate, not_before, not_after)
            .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        return builder.sign(self.intermediate.key, hashes.SHA256()), key

    def chain(self, leaf: x509.Certificate) -> list[x509.Certificate]:
        """What a server sends: the leaf, then the intermediate."""
        return [leaf, self.intermediate.certificate]

    def write_root(self, path: Path) -> Path:
        path.write_bytes(pem(self.root.certificate))
        return path

    def write_server(self, folder: Path, stem: str, leaf: x509.Certificate, key) -> tuple[Path, Path]:
        """`<stem>.pem` (leaf + intermediate) and `<stem>.key`, as a server is configured."""
        folder.mkdir(parents=True, exist_ok=True)
        chain_file, key_file = folder / f"{stem}.pem", folder / f"{stem}.key"
        chain_file.write_bytes(pem(*self.chain(leaf)))
        key_file.write_bytes(key_pem(key))
        key_file.chmod(0o600)
        return chain_file, key_file

    def write_bundle(self, path: Path, leaf: x509.Certificate, key) -> Path:
        """The private key, then the leaf and the intermediate, in one file (the layout of CERTS_DIR)."""
        path.write_bytes(key_pem(key) + pem(*self.chain(leaf)))
        path.chmod(0o640)
        return path
