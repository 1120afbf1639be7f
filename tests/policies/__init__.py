"""Tests of hosted domains and their policies: rules, files, the served snapshot."""
