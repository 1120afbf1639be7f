"""Tests of accounts, grants and API tokens."""
