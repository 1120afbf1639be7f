"""DNS, DNSSEC and DANE: records to publish, what resolvers and MX hosts say, publishing by RFC 2136."""
