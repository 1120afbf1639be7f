"""Prometheus counters of events, recorded where they happen (policy fetches, reports taken in or refused).

Under gunicorn they go through prometheus_client's multiprocess files (PROMETHEUS_MULTIPROC_DIR),
so that any worker answers /metrics for all (stspolicy.web.metrics).
"""



from prometheus_client import Counter, Histogram

REPORTS_INGESTED = Counter(
    "stspolicy_reports_ingested_total", "TLS-RPT reports stored, by how they came (https, mail, file)", ["channel"]
)


REPORTS_REFUSED = Counter(
    "stspolicy_reports_refused_total", "TLS-RPT reports refused, by channel and reason code", ["channel", "reason"]
)


INGEST_SECONDS = Histogram(
    "stspolicy_report_ingest_seconds", "Time to take in one report, from bytes to stored or refused", ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


POLICY_FETCHES = Counter(
    "stspolicy_policy_fetches_total", "Policy fetches answered, by hosted domain (- for any other name) and status",
    ["domain", "status"],
)


def record_policy_fetch(domain: str | None, status: int) -> None:
    """`domain` only when hosted here (else None), so that Host headers cannot grow the label set."""
    POLICY_FETCHES.labels(domain or "-", str(status)).inc()


def record_report_ingested(channel: str, seconds: float) -> None:
    """Call once per report stored (a resend that is a no-op counts too: the sender got its 2xx)."""
    REPORTS_INGESTED.labels(channel).inc()
    INGEST_SECONDS.labels(channel).observe(seconds)


def record_report_refused(channel: str, reason: str, seconds: float) -> None:
    """Call once per refused report. `reason` must be one of the intake's fixed codes, never
    text from the report, so that senders cannot grow the label set."""
    REPORTS_REFUSED.labels(channel, reason).inc()
    INGEST_SECONDS.labels(channel).observe(seconds)
