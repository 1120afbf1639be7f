"""The ACME adapter: one certificate for one host name, by http-01.

A narrow interface over the `acme` library (certbot's): `AcmeIssuer(...).issue(host)` returns
the new private key and the full chain, or raises IssueError with the CA's reason. Works
with any ACME v2 directory (Let's Encrypt, pebble in the tests). Where the answers to the
CA's challenges go is the caller's: files in a webroot nginx serves (`WebrootChallenges`),
or the database, from which every serving node writes them (stspolicy.certificates.service).
"""

import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import josepy as jose
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stspolicy.base.atomicfile import write_atomically

USER_AGENT = "stspolicy"
ORDER_TIMEOUT = datetime.timedelta(seconds=90)


class IssueError(RuntimeError):
    """The CA did not issue: validation failed, the order timed out, or the CA refused."""


@dataclass(frozen=True)
class Issued:
    key_pem: bytes
    fullchain_pem: bytes


def new_private_key_pem() -> bytes:
    """An ECDSA P-256 key: small, fast handshakes, accepted by every ACME CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Challenges(Protocol):
    """Where http-01 answers are put for the CA to fetch at /.well-known/acme-challenge/<token>."""

    def publish(self, token: str, validation: str) -> None:
        """Serve `validation` for `token`; return once the CA may ask for it."""

    def withdraw(self, token: str) -> None: ...


# RFC 8555 section 8.3: a token is base64url; anything else never becomes a file name.
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,255}")


def challenge_folder(webroot: Path) -> Path:
    return webroot / ".well-known" / "acme-challenge"


def challenge_file(webroot: Path, token: str) -> Path:
    if not TOKEN.fullmatch(token):
        raise ValueError(f"not an ACME token: {token[:40]!r}")
    return challenge_folder(webroot) / token


class WebrootChallenges:
    """Answers as files in the webroot that nginx serves on port 80."""

    def __init__(self, webroot: Path):
        self._webroot = webroot

    def publish(self, token: str, validation: str) -> None:
        path = challenge_file(self._webroot, token)
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        write_atomically(path, validation.encode("ascii"), 0o644)

    def withdraw(self, token: str) -> None:
        challenge_file(self._webroot, token).unlink(missing_ok=True)


class AcmeIssuer:
    def __init__(self, directory_url: str, account_key_pem: bytes, challenges: Challenges, *, email: str = "",
                 ca_bundle: Path | None = None, timeout: float = 30):
        self._directory_url = directory_url
        self._account_key_pem = account_key_pem
        self._challenges = challenges
        self._email = email
        self._verify = str(ca_bundle) if ca_bundle else True
        self._timeout = timeout
        self._client: client.ClientV2 | None = None

    def issue(self, host: str) -> Issued:
        try:
            return self._issue(host)
        except errors.ValidationError as error:
            raise IssueError(f"validation of {host} failed: {_challenge_errors(error)}") from None
        except errors.TimeoutError:
            raise IssueError(f"the CA did not finish the order for {host} within {ORDER_TIMEOUT.seconds}s") from None
        except errors.Error as error:
            raise IssueError(f"the CA refused {host}: {error}") from None
        except OSError as error:  # requests' connection errors are OSErrors too
            raise IssueError(f"cannot reach the ACME server {self._directory_url}: {error}") from None

    def _issue(self, host: str) -> Issued:
        acme = self._account()
        key_pem = new_private_key_pem()
        order = acme.new_order(crypto_util.make_csr(key_pem, [host]))
        published: list[str] = []
        try:
            for authorization in order.authorizations:
                if authorization.body.status == messages.STATUS_VALID:
                    continue  # the CA remembers a recent validation of this name
                challenge = _http01(authorization)
                response, validation = challenge.response_and_validation(acme.net.key)
                token = challenge.chall.path.rpartition("/")[2]
                published.append(token)
                self._challenges.publish(token, validation)
                acme.answer_challenge(challenge, response)
            deadline = datetime.datetime.now() + ORDER_TIMEOUT
            finished = acme.poll_and_finalize(order, deadline)
        finally:
            for token in published:
                self._challenges.withdraw(token)
        return Issued(key_pem=key_pem, fullchain_pem=finished.fullchain_pem.encode("ascii"))

    def _account(self) -> client.ClientV2:
        if self._client is not None:
            return self._client
        key = jose.JWKEC(key=serialization.load_pem_private_key(self._account_key_pem, password=None))
        network = client.ClientNetwork(key, alg=jose.ES256, verify_ssl=self._verify, user_agent=USER_AGENT,
                                       timeout=self._timeout)
        directory = client.ClientV2.get_directory(self._directory_url, network)
        acme = client.ClientV2(directory, network)
        registration = messages.NewRegistration.from_data(email=self._email or None, terms_of_service_agreed=True)
        try:
            acme.new_account(registration)
        except errors.ConflictError as existing:  # this key already has an account: use it
            network.account = messages.RegistrationResource(uri=existing.location, body=messages.Registration())
        self._client = acme
        return acme


def _http01(authorization: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challenge in authorization.body.challenges:
        if isinstance(challenge.chall, challenges.HTTP01):
            return challenge
    raise IssueError(f"the CA offers no http-01 challenge for {authorization.body.identifier.value}")


def _challenge_errors(error: errors.ValidationError) -> str:
    details = [
        str(challenge.error.detail or challenge.error.typ)
        for authorization in error.failed_authzrs
        for challenge in authorization.body.challenges
        if challenge.error is not None
    ]
    return "; ".join(details) or "no reason given"
