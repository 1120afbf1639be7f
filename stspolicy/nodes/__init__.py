"""Serving nodes: the hosts whose nginx serves every policy and certificate, kept current from the database."""
