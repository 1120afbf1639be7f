"""What the serving nodes report, and who waits for them.

A node applies revision R when its files say what the database said at R (`flask node sync`
writes them, stspolicy.node_sync). Whatever must be served everywhere before it is used (a
policy before its `_mta-sts` id changes, RFC 8461 section 8.1; an http-01 answer before the
CA asks for it) waits until no node is behind. A node not seen for NODE_SILENT_SECONDS is
silent: the pages, the CLI and /metrics call it out, and it still holds a publication back
until it is back or retired (`flask node retire`), since its nginx may still serve old files.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stspolicy.base.settings import NodeSettings
from stspolicy.extensions import utcnow
from stspolicy.nodes.models import ServingNode, ServingState


class NodeError(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class NodeStatus:
    name: str
    state: str  # "current", "behind" (a change is on its way) or "silent"
    applied_revision: int
    revisions_behind: int
    seen_at: datetime
    applied_at: datetime | None
    started_at: datetime
    policies: int
    certificates: int
    last_error: str | None

    def as_dict(self, now: datetime) -> dict:
        """JSON-ready values (the CLI and the API)."""
        return {"name": self.name, "state": self.state, "applied_revision": self.applied_revision,
                "revisions_behind": self.revisions_behind, "seen_at": self.seen_at.isoformat(),
                "seen_seconds_ago": round((now - self.seen_at).total_seconds(), 1),
                "applied_at": self.applied_at.isoformat() if self.applied_at else None,
                "started_at": self.started_at.isoformat(), "policies": self.policies,
                "certificates": self.certificates, "last_error": self.last_error}


def serving_revision(session: Session) -> int:
    """The revision of the last committed change of what nodes serve."""
    return session.scalar(select(ServingState.revision).where(ServingState.id == 1))


def node_statuses(session: Session, settings: NodeSettings, now: datetime) -> list[NodeStatus]:
    """Every node, by name, and whether it serves the current revision."""
    revision = serving_revision(session)
    return [_status(node, revision, settings, now)
            for node in session.scalars(select(ServingNode).order_by(ServingNode.name))]


def _status(node: ServingNode, revision: int, settings: NodeSettings, now: datetime) -> NodeStatus:
    state = "silent" if silent(node, settings, now) else "current" if node.applied_revision >= revision else "behind"
    return NodeStatus(node.name, state, node.applied_revision, max(0, revision - node.applied_revision), node.seen_at,
                      node.applied_at, node.started_at, node.policies, node.certificates, node.last_error)


def silent(node: ServingNode, settings: NodeSettings, now: datetime) -> bool:
    return now - node.seen_at > timedelta(seconds=settings.silent_seconds)


def nodes_behind(session: Session, revision: int) -> list[ServingNode]:
    """The nodes that do not serve `revision` yet, silent ones included; none when no node is enrolled."""
    return list(session.scalars(select(ServingNode).where(ServingNode.applied_revision < revision)
                                .order_by(ServingNode.name)))


POLL_SECONDS = 0.1


def wait_for_nodes(session: Session, settings: NodeSettings, revision: int, timeout: float, *,
                   silent_too: bool) -> list[ServingNode]:
    """Wait up to `timeout` seconds until no node is behind `revision` (silent ones only if `silent_too`);
    returns those still behind. Each look ends its transaction, so that the next one sees the nodes' news."""
    deadline = time.monotonic() + timeout
    while True:
        now = utcnow()
        behind = [node for node in nodes_behind(session, revision) if silent_too or not silent(node, settings, now)]
        session.commit()
        if not behind or time.monotonic() >= deadline:
            return behind
        time.sleep(POLL_SECONDS)


def describe_behind(nodes: list[ServingNode], settings: NodeSettings, now: datetime) -> str:
    """`a, b (silent)`: the names of nodes a change waits for."""
    return ", ".join(node.name + (" (silent)" if silent(node, settings, now) else "") for node in nodes)


def record_sync(session: Session, name: str, revision: int, *, policies: int, certificates: int, started_at: datetime,
                now: datetime) -> None:
    """A node has written what revision `revision` says (enrolling it on its first sync); commits."""
    node = _node(session, name, started_at, now)
    if node.applied_revision != revision or node.applied_at is None:
        node.applied_revision, node.applied_at = revision, now
    node.policies, node.certificates, node.seen_at, node.last_error = policies, certificates, now, None
    session.commit()


def record_heartbeat(session: Session, name: str, started_at: datetime, now: datetime) -> None:
    """A node is alive and listening, with nothing new to apply; commits."""
    _node(session, name, started_at, now).seen_at = now
    session.commit()


def record_failure(session: Session, name: str, error: str, started_at: datetime, now: datetime) -> None:
    """A node reached the database but could not apply what it read (a full disk, a key it cannot unseal)."""
    node = _node(session, name, started_at, now)
    node.seen_at, node.last_error = now, error[:2000]
    session.commit()


def _node(session: Session, name: str, started_at: datetime, now: datetime) -> ServingNode:
    node = session.scalar(select(ServingNode).where(ServingNode.name == name))
    if node is None:
        node = ServingNode(name=name, applied_revision=0, seen_at=now, started_at=started_at, policies=0,
                           certificates=0)
        session.add(node)
    node.started_at = started_at
    return node


def retire_node(session: Session, settings: NodeSettings, name: str, now: datetime) -> None:
    """Stop waiting for a silent node (taken out of DNS for good); it enrols again if its sync comes back."""
    node = session.scalar(select(ServingNode).where(ServingNode.name == name))
    if node is None:
        raise NodeError(f"no serving node {name[:100]!r}")
    if not silent(node, settings, now):
        raise NodeError(f"node {node.name} was seen {int((now - node.seen_at).total_seconds())}s ago: stop its "
                        f"`flask node sync` first, then retire it once it is silent "
                        f"(NODE_SILENT_SECONDS={settings.silent_seconds:g})")
    session.execute(delete(ServingNode).where(ServingNode.id == node.id))
    session.commit()
