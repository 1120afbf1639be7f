"""`flask node ...`: serving nodes, each keeping its nginx files current from the database."""

import json
import signal
import sys

import click
from flask import current_app

from stspolicy.base.settings import current_settings
from stspolicy.cli.common import CommandGroup
from stspolicy.extensions import db, utcnow
from stspolicy.node_sync import UNREACHABLE, run_node
from stspolicy.nodes.service import NodeError, node_statuses, retire_node


@click.group("node", cls=CommandGroup)
def node_cli():
    """Serving nodes: policy files, certificates and ACME answers for nginx, from the database."""


@node_cli.command("sync")
@click.option("--once", is_flag=True, help="One full sync, then exit (non-zero if it failed).")
def sync_command(once):
    """Keep POLICY_FILES_DIR, CERTS_DIR and ACME_WEBROOT current as NODE_NAME until stopped (the node's service)."""
    def report(line: str) -> None:
        click.echo(line, err="unreachable" in line or "not brought up to date" in line)
    # On `systemctl stop`: a file being replaced stays old or new and its temporary copy is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run_node(current_app, report, once=once)
    except UNREACHABLE as error:
        raise click.ClickException(f"database unavailable: {getattr(error, 'orig', None) or error}") from None


@node_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list.")
def list_command(as_json):
    """Each node: current, behind (a change on its way) or silent (not seen for NODE_SILENT_SECONDS)."""
    now = utcnow()
    statuses = node_statuses(db.session, current_settings().nodes, now)
    if as_json:
        click.echo(json.dumps([status.as_dict(now) for status in statuses], indent=2))
        return
    for status in statuses:
        problem = f"  last sync failed: {status.last_error}" if status.last_error else ""
        click.echo(f"{status.name:<30} {status.state:<8} revision {status.applied_revision} "
                   f"({status.revisions_behind} behind), seen {_ago(status.seen_at, now)} ago, "
                   f"{status.policies} policies, {status.certificates} certificates{problem}")
    click.echo(f"{len(statuses)} node(s)")


def _ago(moment, now) -> str:
    seconds = int((now - moment).total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}min" if seconds < 7200 else f"{seconds // 3600}h"


@node_cli.command("retire")
@click.argument("name")
def retire_command(name):
    """Stop waiting for silent node NAME (taken out of the policy hosts' DNS): publishing goes ahead without it."""
    try:
        retire_node(db.session, current_settings().nodes, name, utcnow())
    except NodeError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"retired node {name}: publishing no longer waits for it")
