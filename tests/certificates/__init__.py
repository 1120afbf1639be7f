"""Tests of ACME certificates."""
