"""Writing one accepted report: its row, policy blocks, failure details and daily rollups (by policy
domain, and the review's by hosted domain: models.DailyTotal, DailyFailure, ResultTypeSeen); and
the copies of a report that is stored already.

The first copy of a report goes in by `store`: on PostgreSQL one statement, one round trip
however many failure details there are (data-modifying CTEs fed with JSON that msgspec encodes
from the parsed report); the embedded SQLite has no such CTEs (and no round trips to save), so
there the same rows go in with one INSERT per table. Another copy goes through `store_copy`
(README, "Copies of a report"). The caller owns the transaction.
"""

import functools
import hashlib
import zlib
from collections import Counter

import msgspec
from sqlalchemy import (
    JSON,
    BigInteger,
    String,
    bindparam,
    case,
    cast,
    column,
    delete,
    func,
    insert,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reports.models import (
    COUNTED,
    HELD,
    REPORT_KEY,
    ROLLUP_CEILING,
    ROLLUP_SHARDS,
    SET_ASIDE,
    DailyFailure,
    DailyRollup,
    DailyTotal,
    FailureDetail,
    Report,
    ReportDomain,
    ReportPolicy,
    ResultTypeSeen,
)
from reports.parsing import schema
from reports.parsing.organizations import contact_domain, same_organization

STORED = "stored"  # the copy counts
DUPLICATE = "duplicate"  # a copy with the same content was stored before: nothing changed
CONFLICT = "conflict"  # kept, but it does not count: held for an admin's choice, or set aside

_REPORT_KEY = [*REPORT_KEY, "copy_number"]
_ROLLUP_KEY = ["day", "policy_domain", "policy_type", "result_type", "mx_host", "shard"]
_TOTAL_KEY = ["domain_id", "day", "policy_type", "organization_name", "shard"]
_FAILURE_KEY = ["domain_id", "day", "policy_type", "result_type", "mx_host", "organization_name", "sending_ip", "shard"]
_SEEN_KEY = ["domain_id", "result_type"]
_NOT_COLUMNS = {"failure_details", "domain_ids"}  # what a block carries besides its report_policy row
_ENCODER = msgspec.json.Encoder()
# Written into the SQL: the PostgreSQL statement is compiled once and run with only the report's parameters.
_CEILING = literal_column(str(ROLLUP_CEILING), BigInteger)
# dkim_result of a mail with a valid signature by the submitter (reports.channels.dkim).
_DKIM_PASS = "pass d="  # noqa: S105 (a DKIM result, not a password)


def fingerprint(report: schema.ParsedReport) -> str:
    """What tells two copies of a report apart: its content as parsed, the notes on it left out."""
    return hashlib.sha256(_ENCODER.encode(msgspec.structs.replace(report, notes=()))).hexdigest()


def store(session: Session, report: schema.ParsedReport, row: dict, blocks: list[dict]) -> int | None:
    """Insert the report `row` as the first copy of its report and, unless a copy is stored, the rest.

    `blocks` are the report_policy rows in report order, each with its `failure_details`
    (schema.ParsedFailureDetail). Returns the new report's row id, or None when a copy of the
    report (its organization-name, report-id and date range) is stored: then see `store_copy`.
    """
    row = row | {"copy_number": 1, "standing": COUNTED, "chosen_by": None}
    rollups = rollup_rows(report)
    review = review_rows(report, blocks, row["received_at"])
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return connection.exec_driver_sql(_postgresql_sql(connection.dialect), row | {
            "notes": _ENCODER.encode(row["notes"]).decode(),
            "blocks": _ENCODER.encode(blocks).decode(),
            "rollups": _ENCODER.encode(rollups).decode(),
        } | {name: _ENCODER.encode(rows).decode() for name, rows in review.items()}).scalar()
    row_id = session.execute(_first_copy_sqlite(), row).scalar()
    if row_id is not None:
        _add_blocks(session, row_id, blocks, rollups, review)
    return row_id


def store_copy(session: Session, report: schema.ParsedReport, row: dict, blocks: list[dict]) -> tuple[str, int | None]:
    """Another copy of a stored report, in a transaction that locks the report's copies first.

    DUPLICATE when a copy has the same content. Else it is kept and ranked against the copies
    still in contention (counted or held): above them it counts and they are set aside (STORED);
    level with them, none counts and all are held until an admin chooses (CONFLICT); below
    them it is set aside (CONFLICT).
    """
    copies = lock_copies(session, row)
    if any(copy.sha256 == row["sha256"] or copy.fingerprint == row["fingerprint"] for copy in copies):
        return DUPLICATE, None
    contenders = [copy for copy in copies if copy.standing != SET_ASIDE]
    top = max(map(rank, contenders), default=-1)
    own = _rank(None, row["dkim_result"], row["contact_info"])
    if own < top:
        standing = SET_ASIDE
    else:
        standing = COUNTED if own > top else HELD
        for copy in contenders:
            if copy.standing == COUNTED:
                withdraw(session, copy)
            copy.standing = SET_ASIDE if own > top else HELD
    row_id = session.execute(insert(Report).returning(Report.id), row | {
        "copy_number": copies[-1].copy_number + 1, "standing": standing, "chosen_by": None,
    }).scalar_one()
    if standing == COUNTED:
        _add_blocks(session, row_id, blocks, rollup_rows(report), review_rows(report, blocks, row["received_at"]))
        return STORED, row_id
    return CONFLICT, row_id


def lock_copies(session: Session, key: dict | Report) -> list[Report]:
    """The copies of the report `key` names, in order, locked for this transaction.

    Row locks on PostgreSQL (its first copy is always there to lock); on SQLite the write lock
    at once, as a transaction that reads first may not write after another's write under WAL.
    """
    where = [getattr(Report, name) == (getattr(key, name) if isinstance(key, Report) else key[name])
             for name in REPORT_KEY]
    if session.connection().dialect.name == "postgresql":
        session.execute(select(Report.id).where(*where).with_for_update())
    else:
        session.execute(update(Report.__table__).where(*where).values(standing=Report.__table__.c.standing))
    return list(session.scalars(select(Report).where(*where).order_by(Report.copy_number)
                                .execution_options(populate_existing=True)))


def rank(copy: Report) -> int:
    """An admin's choice outranks a valid DKIM signature of the report's organisation, which outranks
    none (HTTPS, unsigned mail)."""
    return _rank(copy.chosen_by, copy.dkim_result, copy.contact_info)


def _rank(chosen_by: str | None, dkim_result: str | None, contact_info: str | None) -> int:
    if chosen_by:
        return 2
    if not (dkim_result or "").startswith(_DKIM_PASS):
        return 0
    # The signature vouches for the report only if its contact-info names no other organisation.
    contact = contact_domain(contact_info)
    return 1 if contact is None or same_organization(contact, dkim_result.removeprefix(_DKIM_PASS)) else 0


def count_copy(session: Session, copy: Report, report: schema.ParsedReport, blocks: list[dict]) -> None:
    """Make the stored `copy` (parsed again as `report`) count: its blocks, details and rollups go in."""
    _add_blocks(session, copy.id, blocks, rollup_rows(report), review_rows(report, blocks, copy.received_at))
    copy.standing = COUNTED


def withdraw(session: Session, copy: Report) -> None:
    """Take the counted `copy` out of every figure: its rollups are subtracted, its blocks and details deleted."""
    rollup = DailyRollup.__table__
    left = rollup.c.session_count - bindparam("minus")
    session.execute(
        update(rollup).where(*(rollup.c[name] == bindparam(f"key_{name}") for name in _ROLLUP_KEY))
        .values(session_count=case((left > 0, left), else_=0)),
        [{f"key_{name}": value for name, value in row.items() if name != "session_count"}
         | {"minus": row["session_count"]} for row in rollup_rows(copy)],
    )
    review = review_rows(copy, _stored_blocks(session, copy), copy.received_at)
    for name, table, key in _review_tables():
        counts = [c for c in ("successful_session_count", "failed_session_count") if c in table.c]
        if counts and review[name]:
            session.execute(
                update(table).where(*(table.c[k] == bindparam(f"key_{k}") for k in key))
                .values({c: case((table.c[c] > bindparam(f"minus_{c}"), table.c[c] - bindparam(f"minus_{c}")),
                                 else_=0) for c in counts}),
                [{f"key_{k}": row[k] for k in key} | {f"minus_{c}": row[c] for c in counts} for row in review[name]],
            )
    session.execute(delete(ReportDomain).where(ReportDomain.report_row_id == copy.id))
    session.execute(delete(ReportPolicy).where(ReportPolicy.report_row_id == copy.id))
    session.expire(copy, ["policies"])
    copy.standing = SET_ASIDE


def _stored_blocks(session: Session, copy: Report) -> list[dict]:
    """The counted `copy`'s blocks as review_rows takes them: a block about a hosted domain counts for
    it; one about an MX host counted for each domain the report counts for (ReportDomain)."""
    counted_for = list(session.scalars(select(ReportDomain.domain_id).where(ReportDomain.report_row_id == copy.id)))
    return [{
        "policy_type": block.policy_type,
        "successful_session_count": block.successful_session_count,
        "failed_session_count": block.failed_session_count,
        "failure_details": block.failure_details,
        "domain_ids": [] if block.domain is None
        else [block.domain_id] if block.domain.name == block.policy_domain else counted_for,
    } for block in copy.policies]


def _add_blocks(session: Session, row_id: int, blocks: list[dict], rollups: list[dict],
                review: dict[str, list[dict]]) -> None:
    """The policy blocks, failure details and rollups of the report row `row_id`, one INSERT per table."""
    statements = _statements(session.connection().dialect.name)
    block_ids = session.scalars(statements["policy"], [
        {name: value for name, value in block.items() if name not in _NOT_COLUMNS} | {"report_row_id": row_id}
        for block in blocks
    ]).all()
    details = [msgspec.structs.asdict(detail) | {"report_policy_id": block_id}
               for block_id, block in zip(block_ids, blocks, strict=True) for detail in block["failure_details"]]
    if details:
        session.execute(statements["detail"], details)
    session.execute(statements["rollup"], rollups)
    for name, rows in review.items():
        if rows:
            session.execute(statements[name], [row | {"report_row_id": row_id} for row in rows] if name == "domains"
                            else rows)


def rollup_counts(report: schema.ParsedReport | Report) -> Counter:
    """Session counts keyed by (day, policy domain, policy type, result type, MX host), of a parsed
    report or of a stored copy (whose rows have the same names)."""
    counts: Counter = Counter()
    for result in report.policies:
        base = (report.day, result.policy_domain or "", result.policy_type)
        counts[(*base, "success", "")] += result.successful_session_count
        counts[(*base, "failure", "")] += result.failed_session_count
        for detail in result.failure_details:
            counts[(*base, detail.result_type, detail.receiving_mx_hostname or "")] += detail.failed_session_count
    return counts


def rollup_rows(report: schema.ParsedReport | Report) -> list[dict]:
    """The rollup upserts in key order, so that concurrent reports never deadlock on them.

    A report adds to the shard its report-id picks (see models.DailyRollup).
    """
    shard = _shard(report)
    return [
        {"day": day, "policy_domain": domain, "policy_type": policy_type, "result_type": result_type,
         "mx_host": mx_host, "shard": shard, "session_count": count}
        for (day, domain, policy_type, result_type, mx_host), count in sorted(rollup_counts(report).items())
    ]


def _shard(report: schema.ParsedReport) -> int:
    return zlib.crc32(report.report_id.encode()) % ROLLUP_SHARDS


def review_rows(report: schema.ParsedReport, blocks: list[dict], received_at) -> dict[str, list[dict]]:
    """The rows the review reads (domains, totals, failures, seen: models.ReportDomain, DailyTotal,
    DailyFailure, ResultTypeSeen), each in key order so that concurrent reports never deadlock on them.

    A block counts for each of its `domain_ids`; totals and failures go to the report's shard.
    """
    day, organization, shard = report.day, report.organization_name, _shard(report)
    totals: dict[tuple, list[int]] = {}
    failures: Counter = Counter()
    seen: set[tuple[int, str]] = set()
    for block in blocks:
        for domain_id in block["domain_ids"]:
            total = totals.setdefault((domain_id, day, block["policy_type"], organization, shard), [0, 0])
            total[0] += block["successful_session_count"]
            total[1] += block["failed_session_count"]
            for detail in block["failure_details"]:
                mx_host = (detail.receiving_mx_hostname or "").rstrip(".")
                failures[(domain_id, day, block["policy_type"], detail.result_type, mx_host, organization,
                          detail.sending_mta_ip or "", shard)] += detail.failed_session_count
                seen.add((domain_id, detail.result_type))
    return {
        "domains": [{"domain_id": domain_id, "day": day} for domain_id in sorted({key[0] for key in totals})],
        "totals": [dict(zip(_TOTAL_KEY, key, strict=True)) | {"successful_session_count": successful,
                                                               "failed_session_count": failed}
                   for key, (successful, failed) in sorted(totals.items())],
        "failures": [dict(zip(_FAILURE_KEY, key, strict=True)) | {"failed_session_count": count}
                     for key, count in sorted(failures.items())],
        "seen": [{"domain_id": domain_id, "result_type": result_type, "first_received_at": received_at}
                 for domain_id, result_type in sorted(seen)],
    }


def add_failures(session: Session, rows: list[dict]) -> None:
    """Add failed sessions to the review's failure rollups (DailyFailure keys), below the ceiling as a report
    adds them; `rows` in key order, so that concurrent reports never deadlock on them."""
    if rows:
        session.execute(_statements(session.connection().dialect.name)["failures"], rows)


def _columns(table, *skipped: str) -> list:
    return [c for c in table.c if c.name != "id" and c.name not in skipped]


def _rows(json_array, columns: list, alias: str):
    """The rows of a JSON array of objects (PostgreSQL's json_to_recordset), typed as `columns`."""
    return func.json_to_recordset(json_array).table_valued(*columns).render_derived(name=alias, with_types=True)


@functools.cache
def _postgresql_sql(dialect) -> str:
    """The statement compiled once, run as the driver's SQL: SQLAlchemy's work per execution (a third
    of the intake's CPU) buys nothing here, the parameters are all of the driver's own types."""
    return str(_postgresql_statement().compile(dialect=dialect))


def _postgresql_statement():
    """The whole report in one statement."""
    report, block, detail, rollup = (model.__table__ for model in (Report, ReportPolicy, FailureDetail, DailyRollup))
    report_row = (
        postgresql.insert(report)
        .values({c.name: bindparam(c.name, type_=c.type) for c in _columns(report)})
        .on_conflict_do_nothing(index_elements=_REPORT_KEY)
        .returning(report.c.id)
        .cte("report_row")
    )
    block_columns = _columns(block, "report_row_id")
    block_in = _rows(cast(bindparam("blocks", type_=String), JSON),
                     [column(c.name, c.type) for c in block_columns] + [column("failure_details", JSON)], "block_in")
    blocks = (
        insert(block)
        .from_select(["report_row_id", *(c.name for c in block_columns)],
                     select(report_row.c.id, *(block_in.c[c.name] for c in block_columns))
                     .select_from(report_row.join(block_in, true())))
        .returning(block.c.id, block.c.position)
        .cte("blocks")
    )
    # A detail's members keep their JSON names (schema.ParsedFailureDetail encodes as the report spells them).
    detail_columns = _columns(detail, "report_policy_id")
    detail_in = _rows(block_in.c.failure_details,
                      [column(c.name.replace("_", "-"), c.type) for c in detail_columns], "detail_in").lateral()
    details = insert(detail).from_select(
        ["report_policy_id", *(c.name for c in detail_columns)],
        select(blocks.c.id, *(detail_in.c[c.name.replace("_", "-")] for c in detail_columns))
        .select_from(blocks.join(block_in, block_in.c.position == blocks.c.position).join(detail_in, true())),
    ).cte("details")
    rollup_columns = _columns(rollup)
    rollup_in = _rows(cast(bindparam("rollups", type_=String), JSON),
                      [column(c.name, c.type) for c in rollup_columns], "rollup_in")
    rollups = postgresql.insert(rollup).from_select(
        [c.name for c in rollup_columns],
        select(*(rollup_in.c[c.name] for c in rollup_columns))
        .select_from(report_row.join(rollup_in, true()))
        .order_by(*(rollup_in.c[name] for name in _ROLLUP_KEY)),
    )
    rollups = rollups.on_conflict_do_update(index_elements=_ROLLUP_KEY, set_={
        "session_count": func.least(rollup.c.session_count + rollups.excluded.session_count, _CEILING),
    })
    reviews = []
    for name, table, key in _review_tables():
        columns = _columns(table, "report_row_id")
        rows = _rows(cast(bindparam(name, type_=String), JSON), [column(c.name, c.type) for c in columns], f"{name}_in")
        of_report = [report_row.c.id] if "report_row_id" in table.c else []
        upsert = postgresql.insert(table).from_select(
            [*(["report_row_id"] if of_report else []), *(c.name for c in columns)],
            select(*of_report, *(rows.c[c.name] for c in columns)).select_from(report_row.join(rows, true()))
            .order_by(*(rows.c[name] for name in key)),
        )
        reviews.append(_review_upsert(upsert, func.least).cte(name))
    return select(report_row.c.id).add_cte(details, rollups.cte("rollups"), *reviews)


def _review_tables() -> list:
    return [("domains", ReportDomain.__table__, ["domain_id"]), ("totals", DailyTotal.__table__, _TOTAL_KEY),
            ("failures", DailyFailure.__table__, _FAILURE_KEY), ("seen", ResultTypeSeen.__table__, _SEEN_KEY)]


def _review_upsert(statement, least):
    """Add to the review's rollup rows (below the ceiling, as the others), keep the first time a result type came."""
    table = statement.table
    if table.name == ReportDomain.__tablename__:
        return statement  # a new report's: never there before
    if table.name == ResultTypeSeen.__tablename__:
        return statement.on_conflict_do_nothing(index_elements=_SEEN_KEY)
    added = {name: least(table.c[name] + statement.excluded[name], _CEILING)
             for name in ("successful_session_count", "failed_session_count") if name in table.c}
    key = _TOTAL_KEY if table.name == DailyTotal.__tablename__ else _FAILURE_KEY
    return statement.on_conflict_do_update(index_elements=key, set_=added)


@functools.cache
def _first_copy_sqlite():
    report = Report.__table__
    return sqlite.insert(report).on_conflict_do_nothing(index_elements=_REPORT_KEY).returning(report.c.id)


@functools.cache
def _statements(dialect_name: str) -> dict:
    block, detail, rollup = (model.__table__ for model in (ReportPolicy, FailureDetail, DailyRollup))
    rollup_upsert = (postgresql if dialect_name == "postgresql" else sqlite).insert(rollup)
    total = rollup.c.session_count + rollup_upsert.excluded.session_count
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    # SQLite's min of two values is PostgreSQL's least.
    least = func.least if dialect_name == "postgresql" else func.min
    review = {name: _review_upsert(dialect.insert(table), least) for name, table, _key in _review_tables()}
    return review | {
        "policy": insert(block).returning(block.c.id, sort_by_parameter_order=True),
        "detail": insert(detail),
        "rollup": rollup_upsert.on_conflict_do_update(
            index_elements=_ROLLUP_KEY, set_={"session_count": case((total > _CEILING, _CEILING), else_=total)},
        ),
    }
