"""Private keys sealed for the database with KEY_ENCRYPTION_KEYS, so that a dump or a replica holds no usable key.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`): the first key seals, any key
unseals, so a new key goes first and the old ones stay until `flask cert reseal` has
sealed everything again with the new one.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from stspolicy.certificates.errors import CertificateError


def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise CertificateError("KEY_ENCRYPTION_KEYS is not set: private keys in the database cannot be sealed "
                               "or unsealed here")
    return MultiFernet([Fernet(key) for key in keys])


def seal(keys: tuple[str, ...], secret: bytes) -> str:
    return _fernet(keys).encrypt(secret).decode("ascii")


def unseal(keys: tuple[str, ...], sealed: str) -> bytes:
    try:
        return _fernet(keys).decrypt(sealed.encode("ascii"))
    except InvalidToken:
        raise CertificateError("no key in KEY_ENCRYPTION_KEYS unseals a private key in the database: "
                               "set the key it was sealed with") from None


def reseal(keys: tuple[str, ...], sealed: str) -> str:
    """`sealed` sealed again with the first key (after a new key was put first)."""
    try:
        return _fernet(keys).rotate(sealed.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise CertificateError("no key in KEY_ENCRYPTION_KEYS unseals a private key in the database: "
                               "set the key it was sealed with") from None
