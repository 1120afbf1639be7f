"""Tests of the production shape: nginx, systemd units, end to end."""
