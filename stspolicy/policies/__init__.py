"""Hosted domains and their MTA-STS policies: rules, versions, the served snapshot and files."""
