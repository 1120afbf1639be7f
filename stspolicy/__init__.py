"""MTA-STS policy host and TLS-RPT report collector for many domains (the app factory is stspolicy.app)."""
