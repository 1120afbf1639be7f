"""gunicorn settings; every value can be overridden from the environment.

BIND/PORT (default 127.0.0.1:8000) or GUNICORN_BIND (in production unix:/run/stspolicy/gunicorn.sock,
behind nginx), WEB_CONCURRENCY workers (default 2 per CPU, at most 8), GUNICORN_THREADS per worker.
Graceful reload: `kill -HUP <master>` (systemctl reload stspolicy) starts new workers with new
code and settings, then lets the old ones finish their requests.
GUNICORN_WORKER_CONNECTIONS per worker (default twice the threads).
GUNICORN_REQUEST_READ_SECONDS (default 30): a request not received whole by then gets a 408;
GUNICORN_POLICY_THREADS (default 2) per worker answer policy fetches and nothing else.
"""

import glob
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND") or f"{os.environ.get('BIND', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count(), 8)))
# gthread, with each request read whole before a thread takes it and policy fetches on threads
# of their own (stspolicy/web/worker.py): slow clients and a slow database never hold them up.
worker_class = "stspolicy.web.worker.BufferingThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A worker takes at most this many connections (busy and kept alive), so that clients that
# keep theirs open, as wrk or a proxy does, are spread over the workers instead of all
# landing on the first one to wake: one worker holds one core at most.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", 2 * threads))
keepalive = 5
timeout = 30
graceful_timeout = 20
# Workers are not recycled after a number of requests: one takes a second or two to import the
# application and load the policies, and under an even load they would all reach the count,
# and restart, at about the same time.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
# The client as nginx saw it, the virtual host, and the time taken in milliseconds.
access_log_format = '%({x-forwarded-for}i)s "%({host}i)s" "%(r)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
control_socket_disable = True  # no runtime control socket in $HOME; signals do the job

# prometheus_client keeps each process's counters in files here, so any worker answers /metrics for all.
metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server):
    """Start the metrics from zero: files of a previous run belong to processes long gone."""
    if metrics_dir:
        os.makedirs(metrics_dir, exist_ok=True)
        for stale in glob.glob(os.path.join(metrics_dir, "*.db")):
            os.unlink(stale)


def child_exit(server, worker):
    if metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, metrics_dir)


def post_worker_init(worker):
    """Load the policy snapshot before the worker accepts its first request."""
    snapshot = getattr(worker.wsgi, "extensions", {}).get("policy_snapshot")
    if snapshot is None:
        return
    loaded = snapshot.start()
    if loaded is None:
        worker.log.warning("worker %s: policies not loaded, answering 503 until the database is back", worker.pid)
    else:
        worker.log.info("worker %s: policies loaded for %d domains", worker.pid, loaded)
