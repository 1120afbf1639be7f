"""Tests of the TLS-RPT intake."""
