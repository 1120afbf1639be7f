"""TLS-RPT (RFC 8460): reports received by HTTPS, mail, IMAP and from files, stored once (wired by stspolicy.app)."""
