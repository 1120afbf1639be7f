"""Policy fetches per second: our endpoint vs a bare Flask view, same gunicorn, same run.

    python -m bench.policy_fetch [--domains 200] [--seconds 10] [--rounds 2]

Hosts 200 domains in a fresh SQLite database, then runs wrk on loopback with a random
`Host: mta-sts.<domain>` per request against gunicorn serving (a) the application and
(b) bench/bare_app.py with the same gunicorn.conf.py. Rounds alternate so drift hits both.
Target: ours / bare >= 0.85.
"""

import argparse
import tempfile

from flask_migrate import upgrade

from bench.common import APP_LOADED, BARE_APP_LOADED, gunicorn, require, summarize, wrk
from stspolicy.app import create_app
from stspolicy.extensions import db
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    require("wrk", "wrk")

    with tempfile.TemporaryDirectory() as folder:
        settings = {"DATABASE_URL": f"sqlite:///{folder}/bench.db", "SECRET_KEY": "bench"}
        app = create_app(settings)
        domains = [f"customer{n}.example" for n in range(args.domains)]
        with app.app_context():
            upgrade()
            for name in domains:
                policy = make_policy("enforce", [f"mx1.{name}", f"mx2.{name}"], 604800)
                add_domain(db.session, name, policy, actor="bench")
        hosts = [f"mta-sts.{name}" for name in domains]

        results: dict[str, list] = {"stspolicy": [], "bare Flask": []}
        for round_number in range(args.rounds):
            for label, spec, loaded in (("bare Flask", "bench.bare_app:app", BARE_APP_LOADED),
                                        ("stspolicy", "wsgi:app", APP_LOADED)):
                with gunicorn(spec, settings, args.workers, loaded=loaded) as (url, _):
                    wrk(url, hosts, "/.well-known/mta-sts.txt", seconds=2, connections=args.connections)  # warm up
                    result = wrk(url, hosts, "/.well-known/mta-sts.txt", seconds=args.seconds,
                                 connections=args.connections)
                print(f"round {round_number + 1}  {label:<11} {result}", flush=True)
                results[label].append(result)

    summarize(results, "stspolicy", "bare Flask", 0.85)


if __name__ == "__main__":
    main()
