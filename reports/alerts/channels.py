"""The two ways notices leave: mail through an SMTP relay, and signed webhook POSTs.

Each send says whether a failure is temporary (the channel is unavailable: try again later)
or permanent (this notice cannot be delivered: a recipient refused, a URL that answers 4xx).
"""

import email.policy
import hashlib
import hmac
import http.client
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit

from reports.alerts.settings import SmtpSettings, WebhookSettings
from stspolicy.dns.probe import refusal

SIGNATURE_HEADER = "X-Stspolicy-Signature"
TIMESTAMP_HEADER = "X-Stspolicy-Timestamp"
DELIVERY_HEADER = "X-Stspolicy-Delivery"
MAX_ERROR_LENGTH = 500


class DeliveryFailed(Exception):
    """`temporary`: the channel could not be used now, try again; else this notice cannot be delivered."""

    def __init__(self, message: str, temporary: bool):
        super().__init__(message[:MAX_ERROR_LENGTH])
        self.temporary = temporary


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str | None
    message_id: str  # the same on every attempt, so that a receiver can drop a copy


# Lines up to RFC 5322's limit: Python folds a Subject that starts with "[" badly at 78.
POLICY = email.policy.SMTP.clone(max_line_length=998)


def build_message(mail: Mail, mail_from: str) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = mail_from
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = mail.message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to alerts
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    return message


def message_id(key: str, mail_from: str) -> str:
    """A Message-ID made from the notice's key: a copy sent again after a crash has the same one."""
    return f"<alert.{hashlib.sha256(key.encode()).hexdigest()[:32]}@{mail_from.rpartition('@')[2] or 'localhost'}>"


class Mailer:
    """One SMTP session for a run's mail; connects on the first message."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._client: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context(cafile=s.cafile or None)
        client = None
        try:
            if s.security == "tls":
                client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    client.starttls(context=context)
            if s.user:
                client.login(s.user, s.password)
        except (OSError, smtplib.SMTPException) as error:
            if client is not None:
                client.close()
            if isinstance(error, smtplib.SMTPAuthenticationError):
                raise DeliveryFailed(f"SMTP {s.host}:{s.port}: login refused ({error.smtp_code})",
                                     temporary=True) from None
            raise DeliveryFailed(f"SMTP {s.host}:{s.port}: {error}", temporary=True) from None
        return client

    def send(self, mail: Mail) -> None:
        if self._client is None:
            self._client = self._connect()
        message = build_message(mail, self.settings.mail_from)
        try:
            refused = self._client.send_message(message, from_addr=self.settings.mail_from, to_addrs=[mail.to])
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = error.recipients.get(mail.to, (550, b""))
            raise DeliveryFailed(f"{mail.to} refused: {code} {reply.decode(errors='replace')}",
                                 temporary=400 <= code < 500) from None
        except smtplib.SMTPResponseException as error:
            self.close()
            raise DeliveryFailed(f"SMTP: {error.smtp_code} {error.smtp_error.decode(errors='replace')}",
                                 temporary=error.smtp_code < 500) from None
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise DeliveryFailed(f"SMTP: {error}", temporary=True) from None
        if refused:
            raise DeliveryFailed(f"{mail.to} refused: {refused}", temporary=False)

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (OSError, smtplib.SMTPException):
                self._client.close()
            self._client = None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 of `<timestamp>.<body>` with the webhook's secret, as `sha256=<hex>`.

    The timestamp is signed with the body, so that a receiver can refuse an old request replayed.
    """
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the address we checked, with the certificate checked against the URL's host name."""

    def __init__(self, address: str, host: str, port: int, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class WebhookPoster:
    """POSTs a JSON body, signed, to a URL whose address is public (or in ALERT_WEBHOOK_ALLOWED_NETWORKS),
    connecting to the address that was checked; retries 5xx and network errors with backoff."""

    def __init__(self, settings: WebhookSettings, sleep=time.sleep):
        self.settings = settings
        self.sleep = sleep

    def post(self, url: str, secret: str, body: bytes, delivery_id: int) -> None:
        last = None
        for attempt in range(self.settings.tries):
            if attempt:
                self.sleep(self.settings.backoff_seconds * 2 ** (attempt - 1))
            try:
                self._post_once(url, secret, body, delivery_id)
                return
            except DeliveryFailed as error:
                if not error.temporary:
                    raise
                last = error
        raise last

    def _post_once(self, url: str, secret: str, body: bytes, delivery_id: int) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise DeliveryFailed(f"{host}: cannot resolve: {error}", temporary=True) from None
        address = infos[0][4][0]
        reason = refusal(address, list(self.settings.allowed_networks))
        if reason:
            raise DeliveryFailed(f"{host}: {reason.replace('PROBE_', 'ALERT_WEBHOOK_')}", temporary=False)
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": "stspolicy-alerts",
                   TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body),
                   DELIVERY_HEADER: str(delivery_id), "Host": parts.netloc.rpartition("@")[2]}
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=self.settings.cafile or None)
            connection = _PinnedHTTPSConnection(address, host, port, timeout=self.settings.timeout, context=context)
        else:
            connection = http.client.HTTPConnection(address, port, timeout=self.settings.timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(65536)
        except (OSError, http.client.HTTPException) as error:
            raise DeliveryFailed(f"{host}: {error}", temporary=True) from None
        finally:
            connection.close()
        if response.status >= 500 or response.status in (408, 429):
            raise DeliveryFailed(f"{host} answered {response.status}", temporary=True)
        if response.status >= 300:
            raise DeliveryFailed(f"{host} answered {response.status}", temporary=False)
