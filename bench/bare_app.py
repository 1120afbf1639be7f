"""The baseline: a bare Flask view returning a constant policy, nothing else."""

import sys

from flask import Flask, Response

from bench.common import BARE_APP_LOADED

BODY = b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n"

app = Flask(__name__)


@app.route("/.well-known/mta-sts.txt")
def policy():
    return Response(BODY, content_type="text/plain; charset=utf-8")


print(BARE_APP_LOADED, file=sys.stderr, flush=True)
