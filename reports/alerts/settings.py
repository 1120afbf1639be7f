"""The alert settings, read from the app's config in one place."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # starttls, tls or none
    user: str
    password: str
    cafile: str
    timeout: float
    mail_from: str


@dataclass(frozen=True)
class WebhookSettings:
    allowed_networks: tuple[str, ...]
    timeout: float
    tries: int
    backoff_seconds: float
    cafile: str


@dataclass(frozen=True)
class AlertSettings:
    base_url: str
    smtp: SmtpSettings | None  # None: no mail is sent (notices wait in the outbox)
    webhooks: WebhookSettings
    resolve_after_minutes: int
    digest_weekday: int  # 0 is Monday
    digest_hour: int
    lease_seconds: int
    refused_percent: int
    refused_min_count: int
    metrics_dir: Path | None  # the intake's Prometheus files, where its refusals are counted





def alert_settings(config: Mapping) -> AlertSettings:
    smtp = SmtpSettings(
        config["ALERT_SMTP_HOST"], config["ALERT_SMTP_PORT"], config["ALERT_SMTP_SECURITY"],
        config["ALERT_SMTP_USER"], config["ALERT_SMTP_PASSWORD"], config["ALERT_SMTP_CAFILE"],
        config["ALERT_SMTP_TIMEOUT"], config["ALERT_MAIL_FROM"],
    ) if config["ALERT_SMTP_HOST"] else None
    return AlertSettings(
        base_url=config["ALERT_BASE_URL"],
        smtp=smtp,
        webhooks=WebhookSettings(tuple(config["ALERT_WEBHOOK_ALLOWED_NETWORKS"]), config["ALERT_WEBHOOK_TIMEOUT"],
                                 config["ALERT_WEBHOOK_TRIES"], config["ALERT_WEBHOOK_BACKOFF_SECONDS"],
                                 config["ALERT_WEBHOOK_CAFILE"]),
        resolve_after_minutes=config["ALERT_RESOLVE_AFTER_MINUTES"],
        digest_weekday=config["ALERT_DIGEST_WEEKDAY"],
        digest_hour=config["ALERT_DIGEST_HOUR"],
        lease_seconds=config["ALERT_LEASE_SECONDS"],
        refused_percent=config["ALERT_REFUSED_PERCENT"],
        refused_min_count=config["ALERT_REFUSED_MIN_COUNT"],
        metrics_dir=config["PROMETHEUS_MULTIPROC_DIR"],
    )
