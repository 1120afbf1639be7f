"""The review pages. They join the admin blueprint, so sign-in, the admin-host check and CSRF are its;
each reaches a domain only through `domain_for_user` (404 for another tenant's).

/reports: the overview of every domain the user may see; /domains/<name>/review: the domain's
dashboard; /domains/<name>/reports: its reports; /domains/<name>/reports/<id>: one report, and
/raw its body as received. Every table is also a CSV: the same URL with `csv=<table>`.
"""

import json
from datetime import UTC, date, datetime, time, timedelta

from flask import Response, abort, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from reports.review import rollups, timeline
from reports.review.chart import daily_chart
from reports.review.filters import POLICY_TYPES, FilterError, Filters, parse_filters
from reports.review.finding_queries import load_findings
from reports.review.finding_store import open_findings
from reports.review.findings import RECEIVER, Finding
from reports.review.listing import DEFAULT_PER_PAGE, raw_report, report_of, reports_of
from reports.review.reading import review_session
from reports.review.result_types import describe
from reports.review.retention import ip_rollup_start
from reports.review.tables import Cell, Table, csv_text
from stspolicy.accounts.service import domain_for_user, visible_domains
from stspolicy.extensions import db
from stspolicy.web.admin.views import bp as pages
from stspolicy.web.locale import local_datetime, translated, whole_number

TOP = 10  # rows of each breakdown; the rest summed in one more
OVERVIEW_DAYS = 7
OVERVIEW_PER_PAGE = 100  # domains, those with the most failed sessions first; the CSV has them all
DASHBOARD_DAYS = 30
BREAKDOWNS = (("result_type", _l("Failures by result type"), _l("Result type")),
              ("mx", _l("Failures by receiving MX"), _l("Receiving MX")),
              ("org", _l("Failures by reporting organisation"), _l("Organisation")),
              ("ip", _l("Failures by sending IP"), _l("Sending IP")))


CSV_ROWS = 10_000  # the reports of a CSV download: years of a domain's


@pages.app_template_global()
def csv_url(table: str) -> str:
    """This page's URL asking for one of its tables as CSV (every row, not one page of them)."""
    args = {name: value for name, value in request.args.items() if name not in ("csv", "page")}
    return url_for(request.endpoint, **request.view_args, **args, csv=table)


def _today() -> date:
    return datetime.now(UTC).date()


def _filters(default_days: int) -> tuple[Filters, FilterError | None]:
    """The request's filters; when one is wrong, the default range and the error to show beside its field."""
    try:
        return parse_filters(request.args, _today(), default_days), None
    except FilterError as error:
        return parse_filters({}, _today(), default_days), error


def _page_number() -> int:
    text = request.args.get("page", "1")
    return int(text) if text.isdigit() and 0 < len(text) < 7 and int(text) > 0 else 1


def _render(template: str, tables: list[Table], filename: str, error: FilterError | None, **context):
    """The page, or one of its tables as CSV when `csv=<table>` asks for it."""
    wanted = request.args.get("csv")
    if wanted is not None:
        table = next((table for table in tables if table.name == wanted), None)
        if table is None:
            abort(404)
        return Response(csv_text(table), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{filename}-{table.name}.csv"'})
    context["tables"] = {table.name: table for table in tables}
    return render_template(template, error=error, **context), 422 if error else 200


def _percent(part: int, whole: int) -> str | None:
    return f"{part / whole * 100:.1f} %" if whole else None


@pages.get("/reports")
def review_overview():
    domains = visible_domains(db.session, current_user)
    filters, error = _filters(OVERVIEW_DAYS)
    ids = [domain.id for domain in domains]
    summaries = rollups.domain_summaries(review_session(), ids, filters, datetime.now(UTC))
    findings: dict[str, list[Finding]] = {}
    # The open findings the timer stored (finding_store): correlating every domain's reports on each view
    # takes seconds for a thousand domains.
    for finding in open_findings(review_session(), [domain.name for domain in domains]):
        findings.setdefault(finding.domain, []).append(finding)
    ordered = sorted(domains, key=lambda d: (-summaries[d.id].failed_session_count, d.name))
    wanted_csv = request.args.get("csv") is not None
    page = 1 if wanted_csv else min(_page_number(), max(1, -(-len(ordered) // OVERVIEW_PER_PAGE)))
    shown = ordered if wanted_csv else ordered[(page - 1) * OVERVIEW_PER_PAGE:page * OVERVIEW_PER_PAGE]
    table = Table("domains", _l("Domains"), [_l("Domain"), _l("Sessions"), _l("Success"), "sts", "tlsa",
                                             "no-policy-found", _l("Failed"), _l("Last report"), _l("From"),
                                             _l("New result types (24 h)"), _l("Findings")],
                  numeric=(1, 2, 3, 4, 5, 6),
                  empty=_l("No report about these domains."))
    args = filters.as_args()
    last_reports = rollups.last_reports(review_session(), [domain.id for domain in shown])
    for domain in shown:
        summary = summaries[domain.id]
        sessions = summary.successful_session_count + summary.failed_session_count
        last = last_reports.get(domain.id)
        table.add(Cell(domain.unicode_name, url_for(".review_domain", name=domain.name, **args)), sessions,
                  _percent(summary.successful_session_count, sessions),
                  *(_policy_type_cell(summary, policy_type) for policy_type in POLICY_TYPES),
                  summary.failed_session_count,
                  f"{local_datetime(last[1])} UTC" if last else _("no reports"), last[2] if last else None,
                  Cell(", ".join(summary.new_result_types) or None, code=True,
                       href=url_for(".review_domain", name=domain.name, **filters.narrowed(
                           result_type=summary.new_result_types[0]).as_args()) if summary.new_result_types else None),
                  _findings_cell(domain, args, findings.get(domain.name, [])))
    days = rollups.reports_per_day(review_session(), ids, filters)
    per_day = Table("reports_per_day", _l("Reports per day"), [_l("Day"), _l("Reports")], numeric=(1,))
    for day, count in days:
        per_day.add(day.isoformat(), count)
    tables = [table, per_day]
    if current_user.is_admin:
        tables.append(_unhosted_table())
    chart = daily_chart([(day, {"reports": (count,)}) for day, count in days], [], titles=(_("Reports"),))
    return _render("review/overview.html", tables, "overview", error, filters=filters, chart=chart,
                   domain_count=len(domains), page=page, pages=max(1, -(-len(ordered) // OVERVIEW_PER_PAGE)))


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _findings_cell(domain, args: dict, found: list[Finding]) -> Cell:
    """How many findings a domain has and of which kinds, linking to them on its dashboard."""
    if not found:
        return Cell(None)
    kinds = ", ".join(dict.fromkeys(finding.kind for finding in found))
    return Cell(f"{len(found)}: {kinds}", url_for(".review_domain", name=domain.name, **args) + "#findings")


def _policy_type_cell(summary, policy_type: str) -> Cell:
    """The success rate of one policy type, its counts in the title."""
    successful, failed = summary.by_policy_type.get(policy_type, [0, 0])
    if not successful + failed:
        return Cell(None)
    title = _("%(successful)s successful, %(failed)s failed", successful=whole_number(successful),
              failed=whole_number(failed))
    return Cell(_percent(successful, successful + failed), title=title)


def _unhosted_table() -> Table:
    table = Table("unhosted", _("Reports about no hosted domain"), [_("Received"), _("Organisation"), _("Report id"),
                                                                     _("Policy domains")], empty=_("None."))
    for report_id in rollups.unhosted_report_ids(review_session()):
        shown = report_of(review_session(), report_id, details_limit=0)
        report = shown.report
        table.add(f"{local_datetime(report.received_at)} UTC", report.organization_name,
                  Cell(report.report_id, code=True),
                  Cell(", ".join(sorted({b.block.policy_domain or "(none)" for b in shown.blocks})), code=True))
    return table


@pages.get("/domains/<name>/review")
def review_domain(name):
    domain = domain_for_user(db.session, current_user, name)
    filters, error = _filters(DASHBOARD_DAYS)
    days = rollups.daily_sessions(review_session(), [domain.id], filters)
    changes = timeline.changes(review_session(), domain, filters.since, filters.until)
    chart = daily_chart([(day.day, day.by_policy_type) for day in days],
                        [(change.day, change.kind, change.text) for change in changes],
                        titles=(_("Successful sessions"), _("Failed sessions")))
    tables, choices = [_daily_table(days, chart)], {}
    for dimension, title, label in BREAKDOWNS:
        groups = rollups.top(rollups.failure_groups(review_session(), [domain.id], filters, (dimension,)), TOP)
        tables.append(_breakdown_table(domain, filters, groups, dimension, title, label))
        choices[dimension] = [group.values[0] for group in groups.shown if group.values[0]]
    tables.append(_changes_table(changes))
    ip_days = current_app.config["TLSRPT_IP_ROLLUP_RETENTION_DAYS"]
    ip_start = ip_rollup_start(_today(), ip_days)  # before it, `flask report prune` drops the IPs of failures
    findings = load_findings(review_session(), [domain.name], since=_start(filters.since),
                             until=_start(filters.until + timedelta(days=1)))
    shown = [(finding, url_for(".review_reports", name=domain.name, **_finding_filters(finding)),
              json.dumps(finding.evidence, indent=2, ensure_ascii=False)) for finding in findings]
    tables.append(_findings_table(shown))
    return _render("review/domain.html", tables, f"{domain.name}-review", error, domain=domain, filters=filters,
                   chart=chart, policy_types=POLICY_TYPES, choices=choices, findings=shown, receiver=RECEIVER,
                   ip_days=ip_days, ip_start=ip_start if filters.since < ip_start else None)


def _finding_filters(finding: Finding) -> dict[str, str]:
    """The filters of the reports behind a finding: its days, and its result type, MX, policy type and
    organisation when the evidence names one."""
    evidence = finding.evidence
    result_types = list(evidence.get("result_types", {}))
    policy_types = evidence.get("policy_types", ["sts"] if finding.kind.endswith("sts-policy") else [])
    organisations = list(evidence.get("organisations", {}))
    values = {"since": finding.since.date().isoformat(), "until": finding.until.date().isoformat(),
              "result_type": evidence.get("result_type") or (result_types[0] if len(result_types) == 1 else None),
              "mx": evidence.get("mx_host"), "policy_type": policy_types[0] if len(policy_types) == 1 else None,
              "org": organisations[0] if len(organisations) == 1 else None}
    return {name: value for name, value in values.items() if value}


def _findings_table(shown: list) -> Table:
    table = Table("findings", _l("Findings"), [_l("Finding"), _l("Likely side"), _l("From"), _l("To"), _l("What to do"),
                                               _l("Reports"), _l("Evidence")], empty=_l("No finding in this range."))
    for finding, reports_url, evidence in shown:
        table.add(Cell(finding.kind, code=True), _("ours") if finding.side == RECEIVER else _("the sender's"),
                  f"{finding.since:%Y-%m-%d %H:%M}", f"{finding.until:%Y-%m-%d %H:%M}", translated(finding.fix),
                  Cell(_("reports"), reports_url), evidence)
    return table


def _daily_table(days: list[rollups.DaySessions], chart) -> Table:
    headers = [_("Day")]
    for policy_type in POLICY_TYPES:
        headers += [_("%(policy_type)s successful", policy_type=policy_type),
                    _("%(policy_type)s failed", policy_type=policy_type)]
    table = Table("daily", _("Sessions per day"), [*headers, _("Changes")], numeric=tuple(range(1, len(headers))))
    marks = {}
    for mark in chart.marks:
        marks.setdefault(mark.day, []).append(f"[{mark.number}] {mark.text}")
    for day in days:
        counts = []
        for policy_type in POLICY_TYPES:
            successful, failed = day.by_policy_type.get(policy_type, (0, 0))
            counts += [successful, failed]
        table.add(day.day.isoformat(), *counts, "; ".join(marks.get(day.day, [])) or None)
    return table


def _breakdown_table(domain, filters: Filters, groups: rollups.Top, dimension: str, title: str, label: str) -> Table:
    """One breakdown; result types also say their category, what they mean (the title) and what to do."""
    explained = dimension == "result_type"
    headers = [label, *([_("Category")] if explained else []), _("Failed sessions"), _("Share"), _("Reports"),
               *([_("What to do")] if explained else [])]
    table = Table(dimension, title, headers, numeric=(2, 3) if explained else (1, 2),
                  empty=_("No failure in this range."))
    for group in groups.shown:
        value = group.values[0]
        narrowed = filters.narrowed(**{dimension: value}).as_args() if value else filters.as_args()
        meaning = describe(value) if explained else None
        table.add(Cell(value or _("(not given)"), url_for(".review_domain", name=domain.name, **narrowed), code=True,
                       title=translated(meaning.explanation) if meaning else None),
                  *([translated(meaning.category)] if meaning else []),
                  group.failed_session_count, _percent(group.failed_session_count, groups.total),
                  Cell(_("reports"), url_for(".review_reports", name=domain.name, **narrowed)),
                  *([translated(meaning.fix(domain.name))] if meaning else []))
    if groups.rest_groups:
        table.add(_("%(count)s more", count=groups.rest_groups), *([None] if explained else []), groups.rest_failed,
                  _percent(groups.rest_failed, groups.total), None, *([None] if explained else []))
    return table


def _changes_table(changes: list) -> Table:
    table = Table("changes", _("Changes on our side"), [_("When"), _("What"), _("Change")],
                  empty=_("No policy, TLSA or certificate change in this range."))
    for change in changes:
        table.add(f"{local_datetime(change.at)} UTC", change.kind, change.text)
    return table


@pages.get("/domains/<name>/reports")
def review_reports(name):
    domain = domain_for_user(db.session, current_user, name)
    filters, error = _filters(DASHBOARD_DAYS)
    wanted_csv = request.args.get("csv") is not None
    found = reports_of(review_session(), domain.id, filters, 1 if wanted_csv else _page_number(),
                       CSV_ROWS if wanted_csv else DEFAULT_PER_PAGE)
    table = Table("reports", _("Reports"), [_("Day"), _("Organisation"), _("Report id"), _("Policy types"),
                                            _("Successful"), _("Failed"), _("Received"), _("By")], numeric=(4, 5),
                  empty=_("No report matches."))
    for row in found.rows:
        report = row.report
        table.add(row.day.isoformat(), report.organization_name,
                  Cell(report.report_id, url_for(".review_report", name=domain.name, report_id=report.id), code=True),
                  " ".join(row.policy_types), row.successful_session_count, row.failed_session_count,
                  f"{local_datetime(report.received_at)} UTC", report.source)
    return _render("review/reports.html", [table], f"{domain.name}-reports", error, domain=domain, filters=filters,
                   found=found, policy_types=POLICY_TYPES)


def _visible_ids() -> set[int] | None:
    if current_user.is_admin:
        return None
    return {domain.id for domain in visible_domains(db.session, current_user)}


@pages.get("/domains/<name>/reports/<int(max=2147483647):report_id>")
def review_report(name, report_id):
    domain = domain_for_user(db.session, current_user, name)
    wanted_csv = request.args.get("csv") is not None
    shown = report_of(review_session(), report_id, domain.id, _visible_ids(), details_limit=None if wanted_csv else 200)
    if shown is None:
        abort(404)
    blocks = Table("policies", _("Policies"), [_("Policy type"), _("Policy domain"), _("Our version"), _("Successful"),
                                               _("Failed"), _("Failure details")], numeric=(3, 4, 5))
    details = Table("details", _("Failure details"), [_("Policy domain"), _("Result type"), _("Failed sessions"),
                                                      _("Sending IP"), _("Receiving MX"), _("Receiving IP"), "MX HELO",
                                                      _("Reason code"), _("Additional information")], numeric=(2,),
                    empty=_("None."))
    for block in shown.blocks:
        policy = block.block
        version = (Cell(block.version.policy_id, url_for(".domain", name=domain.name) + "#history", code=True)
                   if block.version else policy.policy_match)
        blocks.add(policy.policy_type, Cell(policy.policy_domain, code=True), version, policy.successful_session_count,
                   policy.failed_session_count, block.detail_count)
        for detail in block.details:
            details.add(Cell(policy.policy_domain, code=True),
                        Cell(detail.result_type, code=True, title=translated(describe(detail.result_type).explanation)),
                        detail.failed_session_count, detail.sending_mta_ip, detail.receiving_mx_hostname,
                        detail.receiving_ip, detail.receiving_mx_helo, detail.failure_reason_code,
                        detail.additional_information)
    meanings = [describe(result_type) for result_type in sorted({detail.result_type for block in shown.blocks
                                                                 for detail in block.details})]
    return _render("review/report.html", [blocks, details], f"{domain.name}-report-{shown.report.id}", None,
                   domain=domain, shown=shown, meanings=meanings)


@pages.get("/domains/<name>/reports/<int(max=2147483647):report_id>/raw")
def review_report_raw(name, report_id):
    domain = domain_for_user(db.session, current_user, name)
    shown = report_of(review_session(), report_id, domain.id, _visible_ids(), details_limit=0)
    if shown is None:
        abort(404)
    if not shown.raw_allowed:
        abort(403, _("This report is also about domains you may not see: ask an admin for it."))
    return raw_response(shown.report)


def raw_response(report) -> Response:
    """The report's JSON as received, as a download (never shown inline: its text is the sender's)."""
    return Response(raw_report(report), mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="report-{report.id}.json"',
        "X-Content-Type-Options": "nosniff"})
