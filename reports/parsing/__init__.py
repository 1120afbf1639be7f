"""TLS-RPT reports from bytes to typed values: bodies within limits, then the JSON. Pure."""
