"""ACME certificates of the hosts we serve."""
