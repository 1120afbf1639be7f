"""Tests of the `flask ...` commands."""
