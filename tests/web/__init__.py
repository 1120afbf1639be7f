"""Tests of the pages, the API and /metrics."""
