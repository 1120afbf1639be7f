"""Report bodies as they arrive: gzip or plain JSON, decompressed within limits.

Pure: bytes in, bytes out. A gzip bomb is measured before it is kept: the first pass
streams the output in small pieces and only counts it, so refusing a body that expands
to gigabytes costs time bounded by the limit and no memory.
"""

import zlib
from dataclasses import dataclass

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024
_MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How much one report may cost; every limit is a setting (stspolicy.config)."""

    max_compressed: int = 5 * _MiB
    max_decompressed: int = 50 * _MiB
    max_depth: int = 20
    max_json_values: int = 1_000_000
    max_policies: int = 1_000
    max_failure_details: int = 50_000
    max_string: int = 4_096
    max_range_days: int = 31


class ReportError(ValueError):
    """A report we refuse; `path` names the place in the JSON document (`$` is the whole)."""

    status = 400

    def __init__(self, message: str, path: str = "$"):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class ReportTooLarge(ReportError):
    status = 413


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def decode_body(body: bytes, limits: Limits) -> tuple[bytes, list[str]]:
    """The JSON bytes inside `body` (gzip detected by its magic bytes) and notes on oddities.

    A gzip inside a gzip (a sender that also set Content-Encoding) is unwrapped once more.
    """
    if len(body) > limits.max_compressed:
        raise ReportTooLarge(f"body of {len(body)} bytes exceeds the limit of {limits.max_compressed}")
    notes = []
    data = body
    for layer in range(2):
        if not is_gzip(data):
            break
        if layer:
            notes.append("gzip inside gzip")
        _measure_gzip(data, limits.max_decompressed)
        data = _gunzip(data)
    if not data.strip():
        raise ReportError("empty report")
    return data, notes


def _members(data: bytes):
    """Yield a decompressor per gzip member with the bytes it starts from (RFC 1952 allows several)."""
    rest = data
    while rest:
        if not is_gzip(rest):
            raise ReportError("trailing bytes after the gzip data")
        decompressor = zlib.decompressobj(wbits=31)
        yield decompressor, rest
        if not decompressor.eof:
            raise ReportError("truncated gzip data")
        rest = decompressor.unused_data


def _measure_gzip(data: bytes, limit: int) -> None:
    total = 0
    for decompressor, rest in _members(data):
        for piece in _inflate(decompressor, rest):
            total += len(piece)
            if total > limit:
                raise ReportTooLarge(f"decompressed report exceeds the limit of {limit} bytes")


def _gunzip(data: bytes) -> bytes:
    out = bytearray()
    for decompressor, rest in _members(data):
        for piece in _inflate(decompressor, rest):
            out += piece
    return bytes(out)


def _inflate(decompressor, data: bytes):
    """Yield the output of one gzip member in pieces of at most 64 KiB."""
    pending = data
    while not decompressor.eof:
        try:
            piece = decompressor.decompress(pending, _CHUNK)
        except zlib.error as error:
            raise ReportError(f"corrupt gzip data ({error})") from None
        pending = decompressor.unconsumed_tail
        if not piece and not pending:
            return
        yield piece
