"""The review pages through the test client: overview, a domain's dashboard, its reports, one report and
its raw body, CSV of every table; what each persona sees, read from the HTML."""

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup

from stspolicy.policies.service import update_policy
from tests.factories import host, sign_in, stored_check
from tests.factories import store_report as store
from tests.support.reportdata import daily_report, encode, failure, sts_block, tlsa_block
from tests.support.reportdata import days_ago as day


def page(response) -> BeautifulSoup:
    assert response.status_code == 200, response.status_code
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def table(soup: BeautifulSoup, name: str) -> list[list[str]]:
    """The rows of the table `name`, each cell's text."""
    return [[" ".join(cell.text.split()) for cell in row.select("td")]
            for row in soup.select(f"#table-{name} tbody tr")]


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_overview_shows_each_visible_domain_with_its_sessions_and_last_report(client, people, reported):
    sign_in(client, people.viewer)
    rows = table(page(client.get("/reports")), "domains")
    assert len(rows) == 1
    domain, sessions, success, sts, tlsa, npf, failed, last, organisation, new, findings = rows[0]
    assert (domain, sessions, failed, organisation) == ("shared.example", "2,045", "75", "Microsoft Corporation")
    assert (success, sts, tlsa, npf) == ("96.3 %", "96.8 %", "66.7 %", "–")
    assert new == "certificate-expired, starttls-not-supported, tlsa-invalid"
    assert last.endswith(" UTC")
    assert findings.startswith("4: ") and "certificate-problem" in findings


def test_the_overview_gives_the_last_report_even_when_older_than_the_range(client, session, people):
    store(session, daily_report("old", sts_block("shared.example", 5, 0), organization="Mail.ru", day=day(20)))
    sign_in(client, people.viewer)
    row = table(page(client.get("/reports")), "domains")[0]
    assert (row[1], row[8]) == ("0", "Mail.ru") and row[7].endswith(" UTC")


def test_the_overview_shows_a_hundred_domains_a_page_those_failing_most_first(client, session, people):
    for n in range(105):
        domain = host(session, f"d{n:03d}.example")
        if n in (7, 104):
            store(session, daily_report(f"r{n}", sts_block(domain.name, 1, n, failure("starttls-not-supported", n)),
                                        day=day(1)))
    sign_in(client, people.admin)
    first = page(client.get("/reports"))
    assert [row[0] for row in table(first, "domains")[:3]] == ["d104.example", "d007.example", "d000.example"]
    second = page(client.get(first.select_one("a[rel=next]")["href"]))
    assert len(table(first, "domains")) == 100 and len(table(second, "domains")) == 7
    assert len(csv_rows(client.get("/reports?csv=domains&page=2"))) == 108


def test_admins_see_every_domain_and_the_reports_about_none(client, session, people, reported):
    store(session, daily_report("nobody", sts_block("unhosted.example", 1, 0), day=day(1)))
    sign_in(client, people.admin)
    soup = page(client.get("/reports"))
    assert [row[0] for row in table(soup, "domains")] == ["shared.example", "foreign.example"]
    assert table(soup, "unhosted")[0][1:] == ["Google Inc.", "nobody", "unhosted.example"]
    sign_in(client, people.viewer)
    assert not page(client.get("/reports")).select("#unhosted")


def test_the_dashboard_charts_each_day_by_policy_type_and_marks_our_changes(client, session, people, reported):
    update_policy(session, people.shared, max_age=86400, actor="test")
    sign_in(client, people.viewer)
    soup = page(client.get("/domains/shared.example/review"))
    svg = soup.select_one("#sessions svg")
    assert svg["role"] == "img" and svg.select("rect.series-sts") and svg.select("rect.series-tlsa")
    rows = {row[0]: row for row in table(soup, "daily")}
    assert len(rows) == 30
    assert rows[day(1)][1:7] == ["1,050", "5", "20", "10", "0", "0"]
    assert rows[day(2)][1:3] == ["900", "60"]
    assert "policy id" in rows[day(0)][7]
    assert [mark.text for mark in svg.select("g.mark text")] == ["1", "2"]  # the domain's first version, and this


def test_the_dashboard_says_when_its_range_reaches_before_the_kept_sending_ips(client, people, reported):
    sign_in(client, people.viewer)
    assert page(client.get("/domains/shared.example/review")).select_one("#ip-kept") is None
    assert page(client.get(f"/domains/shared.example/review?since={day(90)}")).select_one("#ip-kept") is None
    hint = page(client.get(f"/domains/shared.example/review?since={day(91)}")).select_one("#by-ip #ip-kept")
    assert " ".join(hint.text.split()) == (f'Sending IPs are kept for 90 days: the failures of days before {day(90)} '
                                           'count as "(not given)".')


def test_the_dashboard_marks_tlsa_and_certificate_changes_seen_by_dns_checks(client, session, people):
    first = stored_check(session, people.shared, [], mx_hosts=("mx1.shared.example",))
    first.observed_at = datetime.now(UTC) - timedelta(days=3)
    first.mx_hosts[0].tlsa_records, first.mx_hosts[0].certificate_sha256 = ["3 1 1 " + "aa" * 32], "11" * 32
    second = stored_check(session, people.shared, [], mx_hosts=("mx1.shared.example",))
    second.mx_hosts[0].tlsa_records, second.mx_hosts[0].certificate_sha256 = ["3 1 1 " + "bb" * 32], "22" * 32
    session.commit()
    sign_in(client, people.viewer)
    changes = [row for row in table(page(client.get("/domains/shared.example/review")), "changes")
               if row[1] != "policy"]
    assert [row[1] for row in changes] == ["certificate", "tlsa"]
    assert "bb" * 32 in changes[1][2]


def test_breakdowns_show_the_top_rows_and_link_to_the_reports_behind_them(client, people, reported):
    sign_in(client, people.viewer)
    soup = page(client.get("/domains/shared.example/review"))
    assert [row[:5] for row in table(soup, "result_type")] == [
        ["certificate-expired", "TLS negotiation", "60", "80.0 %", "reports"],
        ["tlsa-invalid", "DANE", "10", "13.3 %", "reports"],
        ["starttls-not-supported", "TLS negotiation", "5", "6.7 %", "reports"]]
    assert table(soup, "result_type")[0][5] == "Renew the MX certificate and reload the mail server."
    assert "has expired" in soup.select_one("#table-result_type tbody a code").parent["title"]
    assert [row[0] for row in table(soup, "org")] == ["Google Inc.", "Microsoft Corporation"]
    assert [row[0] for row in table(soup, "ip")] == ["192.0.2.25", "(not given)", "192.0.2.26"]
    link = soup.select_one("#table-result_type tbody tr a[href*='/reports?']")["href"]
    assert "result_type=certificate-expired" in link
    assert [row[2] for row in table(page(client.get(link)), "reports")] == ["google-1"]


def test_the_dashboard_lists_the_findings_with_their_fix_evidence_and_reports(client, people, reported):
    sign_in(client, people.viewer)
    soup = page(client.get("/domains/shared.example/review"))
    findings = {item.select_one("code.kind").text: item for item in soup.select("#findings li.finding")}
    certificate = findings["certificate-problem"]
    assert "mx1.shared.example" in certificate.select_one("p.fix").text
    assert "likely the sender's" in certificate.text  # Google alone reported it
    assert '"Google Inc.": 60' in certificate.select_one("details pre").text
    link = certificate.select_one("a")["href"]
    assert "result_type=certificate-expired" in link and "mx=mx1.shared.example" in link
    assert [row[2] for row in table(page(client.get(link)), "reports")] == ["google-1"]


def test_a_domain_without_findings_says_so(client, people):
    sign_in(client, people.viewer)
    assert "no finding from" in page(client.get("/domains/shared.example/review")).select_one("#findings").text


def test_the_report_page_says_what_its_result_types_mean(client, people, reported):
    sign_in(client, people.viewer)
    soup = page(client.get(f"/domains/shared.example/reports/{reported['microsoft-1']}"))
    meaning = " ".join(soup.select_one("dl.meanings").text.split())
    assert "tlsa-invalid (DANE)" in meaning and "What to do: Publish a TLSA record" in meaning


def test_the_rest_beyond_the_top_rows_is_summed(client, session, people):
    details = [failure("validation-failure", n, "mx1.shared.example", f"192.0.2.{n}") for n in range(1, 15)]
    store(session, daily_report("many", sts_block("shared.example", 0, 105, *details), day=day(1)))
    sign_in(client, people.viewer)
    rows = table(page(client.get("/domains/shared.example/review")), "ip")
    assert len(rows) == 11 and rows[-1][:2] == ["4 more", "10"]  # 1 + 2 + 3 + 4


def test_filters_combine(client, people, reported):
    sign_in(client, people.viewer)
    soup = page(client.get("/domains/shared.example/review?org=Google+Inc.&mx=MX1.shared.example."))
    assert [row[0] for row in table(soup, "result_type")] == ["certificate-expired", "starttls-not-supported"]
    assert soup.select_one("#filter-mx")["value"] == "mx1.shared.example"
    narrowed = page(client.get("/domains/shared.example/reports?policy_type=tlsa&org=Microsoft+Corporation"))
    assert [row[2] for row in table(narrowed, "reports")] == ["microsoft-1"]
    assert not table(page(client.get("/domains/shared.example/reports?policy_type=tlsa&org=Google+Inc.")), "reports")
    failures_only = page(client.get("/domains/shared.example/review?result_type=tlsa-invalid"))
    assert [panel.text for panel in failures_only.select("#sessions svg text.panel-title")] == ["Failed sessions"]


@pytest.mark.parametrize(("query", "field"), [("since=2026-13-01", "since"), ("since=2026-02-01&until=2026-01-01",
                                                                                "since"),
                                               ("policy_type=dane", "policy_type"), ("org=" + "o" * 300, "org")])
def test_a_wrong_filter_is_shown_beside_its_field(client, people, query, field):
    sign_in(client, people.viewer)
    response = client.get(f"/domains/shared.example/review?{query}")
    assert response.status_code == 422
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    assert soup.select_one(f"#filter-{field}-error").text


def test_the_report_page_shows_summary_policies_details_and_how_it_arrived(client, session, people, reported):
    sign_in(client, people.viewer)
    soup = page(client.get(f"/domains/shared.example/reports/{reported['microsoft-1']}"))
    assert soup.select_one("#organization").text == "Microsoft Corporation"
    policies = table(soup, "policies")
    assert [row[:2] for row in policies] == [["sts", "shared.example"], ["tlsa", "a.mx.shared.example"]]
    version_link = soup.select_one("#table-policies tbody tr a")
    assert version_link.text == people.shared.versions[0].policy_id and "#history" in version_link["href"]
    assert table(soup, "details")[0][1:3] == ["tlsa-invalid", "10"]
    assert "https" in soup.select_one("#arrival").text and "not checked" in soup.select_one("#arrival").text


def test_the_raw_report_is_the_json_as_received_decompressed(client, session, people):
    document = daily_report("gzipped", sts_block("shared.example", 1, 0), day=day(1))
    report_id = store(session, document, gzip.compress(encode(document)))
    sign_in(client, people.viewer)
    response = client.get(f"/domains/shared.example/reports/{report_id}/raw")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.data == encode(document) and json.loads(response.data)["report-id"] == "gzipped"


def test_every_table_is_a_csv_download_with_formulas_made_inert(client, session, people, reported):
    store(session, daily_report("formula", sts_block("shared.example", 1, 1, failure("certificate-expired", 1)),
                                organization="=HYPERLINK(\"http://evil.example\")", day=day(1)))
    sign_in(client, people.viewer)
    for path, names in (("/reports", ("domains", "reports_per_day")),
                        ("/domains/shared.example/review", ("daily", "result_type", "mx", "org", "ip", "changes")),
                        ("/domains/shared.example/reports", ("reports",)),
                        (f"/domains/shared.example/reports/{reported['google-1']}", ("policies", "details"))):
        soup = page(client.get(path))
        for name in names:
            link = soup.select_one(f"#table-{name} a.csv")["href"]
            rows = csv_rows(client.get(link))
            assert rows[0] == [" ".join(th.text.split()) for th in soup.select(f"#table-{name} thead th")]
    findings = csv_rows(client.get(page(client.get("/domains/shared.example/review")).select_one(
        "#findings a.csv")["href"]))
    assert findings[0] == ["Finding", "Likely side", "From", "To", "What to do", "Reports", "Evidence"]
    assert "certificate-problem" in [row[0] for row in findings[1:]]
    organisations = csv_rows(client.get("/domains/shared.example/review?csv=org"))
    assert ["'=HYPERLINK(\"http://evil.example\")", "1", "1.3 %", "reports"] in organisations
    assert client.get("/domains/shared.example/review?csv=nothing").status_code == 404


def test_report_fields_are_escaped(client, session, people):
    script = "<script>alert(1)</script>"
    report_id = store(session, daily_report("hostile", sts_block("shared.example", 0, 1, failure(
        "validation-failure", 1, "mx1.shared.example", additional_information=script,
        failure_reason_code=script)), organization=script, day=day(1)))
    sign_in(client, people.viewer)
    for path in (f"/domains/shared.example/reports/{report_id}", "/domains/shared.example/review", "/reports",
                 "/domains/shared.example/reports"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


def test_another_tenants_report_is_404_under_any_domain(client, people, reported):
    sign_in(client, people.viewer)
    for path in (f"/domains/shared.example/reports/{reported['foreign-1']}",
                 f"/domains/shared.example/reports/{reported['foreign-1']}/raw",
                 f"/domains/foreign.example/reports/{reported['foreign-1']}",
                 "/domains/foreign.example/review", "/domains/foreign.example/reports"):
        assert client.get(path).status_code == 404, path


def test_blocks_about_a_domain_the_reader_may_not_see_are_hidden_and_so_is_the_raw_report(client, session, people):
    both = store(session, daily_report("both", sts_block("shared.example", 3, 0), sts_block("foreign.example", 4, 0),
                                       day=day(1)))
    sign_in(client, people.viewer)
    soup = page(client.get(f"/domains/shared.example/reports/{both}"))
    assert [row[1] for row in table(soup, "policies")] == ["shared.example"]
    assert "1 policy block about domains you may not see" in soup.text and not soup.select("#raw")
    assert client.get(f"/domains/shared.example/reports/{both}/raw").status_code == 403
    sign_in(client, people.admin)
    assert client.get(f"/domains/shared.example/reports/{both}/raw").status_code == 200


def test_a_dane_report_to_a_shared_mx_host_is_seen_by_every_domain_using_it(client, session, people):
    host(session, "bakery.example", mx=("a.mx.shared.example",))
    report_id = store(session, daily_report("host-tlsrpt", tlsa_block("a.mx.shared.example", 5, 2), day=day(1)))
    sign_in(client, people.viewer)
    assert client.get(f"/domains/shared.example/reports/{report_id}").status_code == 200
    sign_in(client, people.admin)
    assert client.get(f"/domains/bakery.example/reports/{report_id}").status_code == 200


def test_reports_are_listed_newest_first_a_page_at_a_time(client, session, people):
    for n in range(55):
        store(session, daily_report(f"r{n}", sts_block("shared.example", 1, 0), day=day(n % 25)))
    sign_in(client, people.viewer)
    first = page(client.get("/domains/shared.example/reports"))
    assert len(table(first, "reports")) == 50 and table(first, "reports")[0][0] == day(0)
    second = page(client.get(first.select_one("a[rel=next]")["href"]))
    assert len(table(second, "reports")) == 5 and table(second, "reports")[-1][0] == day(24)
    assert len(csv_rows(client.get("/domains/shared.example/reports?csv=reports&page=2"))) == 56


# The domain list and the enforce confirmation read the same rollups


def test_the_domain_list_counts_every_policy_type_and_links_to_the_dashboard(client, people, reported):
    sign_in(client, people.viewer)
    cell = page(client.get("/")).select_one("td[data-label='Failures (7 days)'] a")
    assert cell.text == "3.7 %"  # 75 failed of 2,045 sessions: sts and the DANE block under a.mx.shared.example
    assert cell["href"].startswith("/domains/shared.example/review?since=")


def test_the_domain_list_gives_the_last_report_when_none_is_in_range(client, session, people):
    store(session, daily_report("old", sts_block("shared.example", 5, 0), day=day(12)))
    sign_in(client, people.viewer)
    cell = page(client.get("/")).select_one("td[data-label='Failures (7 days)'] a")
    assert cell.text == f"last report {day(12)}"


def test_the_enforce_confirmation_shows_the_breakdown_and_links_to_the_dashboard(client, people, reported):
    from tests.web.test_admin_pages import policy_form, post

    sign_in(client, people.editor)
    soup = BeautifulSoup(post(client, "/domains/shared.example/policy", policy_form(mode="enforce"))
                         .get_data(as_text=True), "html.parser")
    text = " ".join(soup.select_one("main").text.split())
    assert "show 65 failed MTA-STS sessions" in text
    by_type, by_result = ([[cell.text for cell in row.select("td")] for row in compact.select("tbody tr")]
                          for compact in soup.select("main table.compact"))
    assert by_type == [["sts", "1950", "65"], ["tlsa", "20", "10"]]
    assert by_result[:2] == [["certificate-expired", "sts", "60"], ["tlsa-invalid", "tlsa", "10"]]
    assert soup.select_one("a[href^='/domains/shared.example/review?since=']")


def test_a_french_reader_reads_the_findings_and_the_result_types_in_french(client, people, reported):
    """The fix of a finding and the meaning of a result type are translated on the page, while the API keeps the
    English (tests/reports/review/test_findings_entry_points.py)."""
    sign_in(client, people.viewer)
    french = {"Accept-Language": "fr"}
    soup = page(client.get("/domains/shared.example/review", headers=french))
    findings = {item.select_one("code.kind").text: item for item in soup.select("#findings li.finding")}
    fix = " ".join(findings["certificate-problem"].select_one("p.fix").text.split())
    assert fix.startswith("Google Inc. signale certificate-expired sur mx1.shared.example")
    assert "sessions depuis le" in fix
    assert "renouvelez le certificat de mx1.shared.example" in fix
    assert "probablement chez l’expéditeur" in findings["certificate-problem"].text
    assert table(soup, "result_type")[0][1] in ("Négociation TLS", "DANE", "MTA-STS")
    meaning = " ".join(page(client.get(f"/domains/shared.example/reports/{reported['microsoft-1']}", headers=french))
                       .select_one("dl.meanings").text.split())
    assert "Que faire : Publiez un enregistrement TLSA" in meaning
