"""Serving nodes for admins: the page (the API in test_api.py, the figures in test_metrics.py)."""

from datetime import timedelta

from stspolicy.extensions import utcnow
from stspolicy.nodes.service import record_failure, record_sync, serving_revision
from tests.factories import sign_in
from tests.web.test_admin_pages import page


def two_nodes(session):
    """node-a serves the current revision; node-b was last seen long ago and failed to write its files."""
    now = utcnow()
    record_sync(session, "node-a", serving_revision(session), policies=2, certificates=1, started_at=now, now=now)
    long_ago = now - timedelta(minutes=10)
    record_sync(session, "node-b", 0, policies=0, certificates=0, started_at=long_ago, now=long_ago)
    record_failure(session, "node-b", "no space left on device: <b>/var/lib</b>", long_ago, long_ago)


def test_the_page_is_for_admins_and_calls_out_a_silent_node(client, session, people):
    two_nodes(session)
    assert client.get("/nodes").status_code == 302  # to the sign-in page
    sign_in(client, people.editor)
    assert client.get("/nodes").status_code == 403
    assert page(client.get("/")).find("a", string="Nodes") is None
    assert client.post("/nodes").status_code == 405
    sign_in(client, people.admin)
    shown = page(client.get("/nodes"))
    states = {row["id"]: row.select_one("td[data-label=State]").text.strip() for row in shown.select("tbody tr")}
    assert states == {"node-node-a": "current", "node-node-b": "silent"}
    failing = shown.select_one("tr#node-node-b td[data-label='Last error']")
    assert failing.text == "no space left on device: <b>/var/lib</b>"  # shown as text, not markup
    assert "behind)" in shown.select_one("tr#node-node-b td[data-label=Revision]").text


def test_without_nodes_the_page_says_the_application_writes_the_files(client, session, people):
    sign_in(client, people.admin)
    assert "No serving node has reported yet" in page(client.get("/nodes")).select_one(".empty").text
