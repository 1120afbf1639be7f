"""Accounts, their access to domains, and API tokens."""
