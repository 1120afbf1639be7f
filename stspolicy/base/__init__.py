"""The base layer: the audit log, Prometheus counters, atomic files and the settings types."""
