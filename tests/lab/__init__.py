"""A lab of real servers for end-to-end tests, each test process in a network namespace of its own.

Fixtures (session-scoped, one set per xdist worker; see `fixtures.py`):

    lab_netns   a `Netns`: loopback up, /etc/netns/<name>/resolv.conf -> the lab resolver.
                `lab_netns.run(*cmd)` / `popen(*cmd)` run programs inside; `with lab_netns.entered():`
                runs Python code of the test itself inside (sockets made there live there).
    dns_lab     a `DnsLab` in that namespace: Knot at 127.0.0.10:53 (authoritative, DNSSEC-signed,
                RFC 2136 + TSIG via `dns_lab.tsig`), unbound at 127.0.0.2:53 (validating, trusts only
                the signed parent `test.`). Children: example.test (secure), plain.test (insecure),
                bogus.test (bogus). `set_records(zone, owner, type, [values])`, `remove_records`, `dig`;
                `add_zone(zone, [lines])` serves an unsigned zone outside test. (`dns.txt` splits long TXT).
    test_ca     a `TestCA` (root + intermediate), the one CA of every test server: `issue(*names, key=,
                not_before=, not_after=)` (host names or IP addresses), `write_server(folder, stem, leaf, key)`,
                `write_bundle(path, leaf, key)` (key and chain in one file), `write_root(path)`.
    mail_servers  Postfix on port 25 in the namespace: `.good`, `.expired`, `.mismatch` (STARTTLS with
                such a certificate) and `.plaintext` (no STARTTLS); each has `.address` and `.chain`.
    lab_app     (per test) the app pointed at the lab: its resolver, loopback probes, the test CA, the TSIG key.
    in_lab      (per test) `in_lab("dns", "check", ...)` runs a `flask` command with the test's thread in the namespace.

`host_domain(session, dns_lab, ...)` hosts a domain and publishes its records in the lab as an
owner following this service would; `publish_in_lab` publishes them alone.

`smtp.Postfix(netns, {address: (chain_file, key_file)})` starts Postfix with one STARTTLS
listener on port 25 per address. Everything needs root and the Debian packages named by
`dns.missing()` / `smtp.missing()`; without them the fixtures skip with the reason.
Give tests their own names under the shared zones (e.g. `<test>.example.test`) so that
tests in one worker never see each other's records.
"""
