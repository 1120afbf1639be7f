"""What one DNS look-up found, as a value: its records and their DNSSEC state (pure: no DNS here).

`stspolicy.dns.resolver` makes these from the wire; findings are drawn from them.
"""

from dataclasses import dataclass

SECURE, INSECURE, BOGUS, INDETERMINATE = "secure", "insecure", "bogus", "indeterminate"


@dataclass(frozen=True)
class Answer:
    """One look-up: `records` in presentation form (TXT strings joined), after following CNAMEs."""

    name: str
    rdtype: str
    state: str  # secure, insecure, bogus or indeterminate
    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, ... or TIMEOUT
    records: tuple[str, ...] = ()
    cnames: tuple[str, ...] = ()  # the names the answer went through, in order
    ttl: int | None = None

    @property
    def canonical_name(self) -> str:
        return self.cnames[-1] if self.cnames else self.name

    @property
    def exists(self) -> bool:
        return self.rcode == "NOERROR" and bool(self.records)

    @property
    def failed(self) -> bool:
        """No usable answer: the name's data is unknown (bogus, SERVFAIL or no response)."""
        return self.state in (BOGUS, INDETERMINATE)

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.rdtype, "state": self.state, "rcode": self.rcode,
                "records": list(self.records), "cnames": list(self.cnames), "ttl": self.ttl}
