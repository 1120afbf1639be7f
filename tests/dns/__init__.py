"""Tests of DNS, DNSSEC, DANE and publishing."""
