"""The `flask ...` commands, one module per group: domain (and policy-files), dns, tlsa, user (and token), cert,
node."""

from flask import Flask

from stspolicy.cli import cert, dns, domain, node, tlsa, user


def init_app(app: Flask) -> None:
    for group in (domain.domain_cli, domain.policy_files_cli, dns.dns_cli, tlsa.tlsa_cli, user.user_cli,
                  user.token_cli, cert.cert_cli, node.node_cli):
        app.cli.add_command(group)
