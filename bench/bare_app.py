"""The baseline: a bare Flask view returning a constant policy, nothing else."""

from flask import Flask, Response

BODY = b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n"

app = Flask(__name__)


@app.route("/.well-known/mta-sts.txt")
def policy():
    return Response(BODY, content_type="text/plain; charset=utf-8")
