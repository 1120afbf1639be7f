"""Stored reports and failure groups as JSON-ready values, the same for the API and the CLI.

Report fields are verbatim, as senders wrote them: whoever renders them escapes them.
"""

from reports.models import FailureDetail
from reports.review.listing import ReportRow, ShownBlock, ShownReport
from reports.review.rollups import Group


def report_row(row: ReportRow) -> dict:
    report = row.report
    return {
        "id": report.id, "organization_name": report.organization_name, "report_id": report.report_id,
        "day": row.day.isoformat(), "start_datetime": report.start_datetime.isoformat(),
        "end_datetime": report.end_datetime.isoformat(), "received_at": report.received_at.isoformat(),
        "source": report.source, "policy_types": list(row.policy_types),
        "successful_session_count": row.successful_session_count, "failed_session_count": row.failed_session_count,
    }


def report_document(shown: ShownReport) -> dict:
    """The whole report as the reader may see it: summary, how it arrived, blocks with their failure details."""
    report = shown.report
    return {
        "id": report.id, "organization_name": report.organization_name, "report_id": report.report_id,
        "contact_info": report.contact_info, "start_datetime": report.start_datetime.isoformat(),
        "end_datetime": report.end_datetime.isoformat(), "received_at": report.received_at.isoformat(),
        "source": report.source, "source_detail": report.source_detail, "sha256": report.sha256,
        "dkim_result": report.dkim_result, "notes": list(report.notes), "hidden_policies": shown.hidden_blocks,
        "policies": [_block(block) for block in shown.blocks],
    }


def _block(shown: ShownBlock) -> dict:
    block = shown.block
    return {
        "policy_type": block.policy_type, "policy_domain": block.policy_domain,
        "policy_strings": list(block.policy_strings), "mx_hosts": list(block.mx_hosts),
        "successful_session_count": block.successful_session_count,
        "failed_session_count": block.failed_session_count,
        "hosted_domain": block.domain.name if block.domain else None, "policy_match": block.policy_match,
        "policy_id": shown.version.policy_id if shown.version else None,
        "failure_detail_count": shown.detail_count,
        "failure_details": [detail_document(detail) for detail in shown.details],
    }


def detail_document(detail: FailureDetail) -> dict:
    return {
        "result_type": detail.result_type, "failed_session_count": detail.failed_session_count,
        "sending_mta_ip": detail.sending_mta_ip, "receiving_ip": detail.receiving_ip,
        "receiving_mx_hostname": detail.receiving_mx_hostname, "receiving_mx_helo": detail.receiving_mx_helo,
        "additional_information": detail.additional_information,
        "failure_reason_code": detail.failure_reason_code,
    }


def group_document(by: tuple[str, ...], group: Group) -> dict:
    return dict(zip(by, group.values, strict=True)) | {"failed_session_count": group.failed_session_count}
