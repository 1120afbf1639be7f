"""Report bodies as they arrive: gzip or plain JSON, decompressed within limits.

Pure: bytes in, bytes out. The output is streamed in small pieces and counted against
the limit; only the first MiB is kept while counting, so refusing a body that expands to
gigabytes costs time bounded by the limit and no memory. A body that expands to more than
that MiB, and within the limit, is inflated a second time to keep it.
"""

from dataclasses import dataclass

# zlib's interface on zlib-ng, whose inflate makes parsing a typical report about 15% faster.
from zlib_ng import zlib_ng as zlib

GZIP_MAGIC = b"\x1f\x8b"
# RFC 8460 sections 5.3 and 5.4, sections 6.2 and 6.3 register them.
GZIP_MEDIA_TYPE = "application/tlsrpt+gzip"
JSON_MEDIA_TYPE = "application/tlsrpt+json"
MEDIA_TYPES = (GZIP_MEDIA_TYPE, JSON_MEDIA_TYPE)
_CHUNK = 64 * 1024
_MiB = 1024 * 1024
_KEPT_WHILE_COUNTING = _MiB
# Any body may decompress to this much whatever its ratio: a small report compresses little.
RATIO_FLOOR = _MiB


@dataclass(frozen=True)
class Limits:
    """How much one report may cost; every limit is a setting (stspolicy.config)."""

    # RFC 8460 section 5.2: "a commonly observed receiver limit is ten megabytes".
    max_compressed: int = 10 * _MiB
    max_decompressed: int = 50 * _MiB
    max_ratio: int = 100  # decompressed to compressed size, above RATIO_FLOOR
    max_depth: int = 20
    max_json_values: int = 1_000_000
    max_policies: int = 1_000
    max_failure_details: int = 50_000
    max_string: int = 4_096
    max_range_days: int = 31


@dataclass
class Budget:
    """Bytes that the reports of one mail may still decompress to, together: a mail of many report
    parts costs no more than one report at TLSRPT_MAX_DECOMPRESSED_BYTES."""

    remaining: int


class ReportError(ValueError):
    """A report we refuse; `path` names the place in the JSON document (`$` is the whole).

    `reason` is the fixed code the refusal is counted under in /metrics (never text from the report).
    """

    status = 400
    reason = "malformed"

    def __init__(self, message: str, path: str = "$"):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class ReportTooLarge(ReportError):
    status = 413
    reason = "too_large"


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def media_type_notes(source: str, declared: str, body: bytes) -> list[str]:
    """Notes where the declared media type does not say what the body is: gzip is told by its
    magic bytes whatever the declaration, and a lax sender's type is taken (HTTPS-01)."""
    if declared == GZIP_MEDIA_TYPE and not is_gzip(body):
        return [f"{source}: declared {declared}, the body is plain JSON"]
    if declared == JSON_MEDIA_TYPE and is_gzip(body):
        return [f"{source}: declared {declared}, the body is gzip"]
    if declared not in MEDIA_TYPES:
        return [f"{source}: declared media type {declared}"]
    return []


def decode_body(body: bytes, limits: Limits, budget: Budget | None = None) -> tuple[bytes, list[str]]:
    """The JSON bytes inside `body` (gzip detected by its magic bytes) and notes on oddities.

    A gzip inside a gzip (a sender that also set Content-Encoding) is unwrapped once more.
    The JSON bytes are charged to `budget`, the mail's, when there is one.
    """
    if len(body) > limits.max_compressed:
        raise ReportTooLarge(f"body of {len(body)} bytes exceeds the limit of {limits.max_compressed}")
    by_ratio = max(limits.max_ratio * len(body), RATIO_FLOOR)
    by_budget = limits.max_decompressed if budget is None else budget.remaining
    limit = min(limits.max_decompressed, by_ratio, by_budget)
    notes = []
    data = body
    try:
        if is_gzip(data):
            data = _gunzip(data, limit)
            if is_gzip(data):
                notes.append("gzip inside gzip")
                data = _gunzip(data, limit)
        if len(data) > limit:
            raise ReportTooLarge(f"report exceeds the limit of {limit} bytes")
    except ReportTooLarge:
        if budget is not None:
            budget.remaining -= limit  # what was inflated before the refusal
        if limit == limits.max_decompressed:
            raise
        if limit == by_ratio:
            raise ReportTooLarge(f"body of {len(body)} bytes decompresses to more than {limits.max_ratio} times "
                                 "its size") from None
        raise ReportTooLarge(f"the reports of this mail decompress to more than {limits.max_decompressed} "
                             "bytes together", "mail") from None
    if budget is not None:
        budget.remaining -= len(data)
    if not data or data.isspace():
        raise ReportError("empty report")
    return data, notes


def _gunzip(data: bytes, limit: int) -> bytes:
    """Nearly every report is one gzip member of less than 64 KiB, inflated in one call; any other
    body, a corrupt one included, goes through _inflate's piece by piece count."""
    decompressor = zlib.decompressobj(wbits=31)
    try:
        whole = decompressor.decompress(data, min(_CHUNK, limit + 1))
    except zlib.error:
        pass
    else:
        if decompressor.eof and not decompressor.unused_data and len(whole) <= limit:
            return whole
    kept, complete = _inflate(data, limit, _KEPT_WHILE_COUNTING)
    return kept if complete else _inflate(data, limit, limit)[0]


def _inflate(data: bytes, limit: int, keep: int) -> tuple[bytes, bool]:
    """Inflate every gzip member (RFC 1952 allows several) in pieces of at most 64 KiB, refusing
    more than `limit` bytes of output; the output, and whether all of it was kept (`keep` bytes at most)."""
    total, kept, rest = 0, [], data
    while rest:
        if not is_gzip(rest):
            raise ReportError("trailing bytes after the gzip data")
        decompressor = zlib.decompressobj(wbits=31)
        decompress = decompressor.decompress
        while not decompressor.eof:
            try:
                piece = decompress(rest, _CHUNK)
            except zlib.error as error:
                raise ReportError(f"corrupt gzip data ({error})") from None
            rest = decompressor.unconsumed_tail
            if not piece and not rest:
                raise ReportError("truncated gzip data")
            total += len(piece)
            if total > limit:
                raise ReportTooLarge(f"decompressed report exceeds the limit of {limit} bytes")
            if total <= keep:
                kept.append(piece)
        rest = decompressor.unused_data
    return b"".join(kept), total <= keep
