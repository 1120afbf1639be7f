"""Print what parsedmarc reads from each TLS-RPT report file, one JSON object per line.

Runs in parsedmarc's own virtual environment (its dependency pins are not ours):
    .venv-interop/bin/python tests/interop/parsedmarc_counts.py FILE...
"""

import json
import sys

import parsedmarc


def main(paths: list[str]) -> None:
    for path in paths:
        parsed = parsedmarc.parse_report_file(path, offline=True)
        report = parsed["report"]
        details = [p.get("failure_details", []) for p in report["policies"]]
        print(json.dumps({
            "file": path,
            "report_type": parsed["report_type"],
            "organization_name": report["organization_name"],
            "report_id": report["report_id"],
            "policies": [
                [p["policy_type"], p["policy_domain"], p["successful_session_count"], p["failed_session_count"],
                 len(ds), sum(d["failed_session_count"] for d in ds)]
                for p, ds in zip(report["policies"], details, strict=True)
            ],
        }))


if __name__ == "__main__":
    main(sys.argv[1:])
