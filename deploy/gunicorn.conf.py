"""gunicorn settings of the web tier: `gunicorn --config deploy/gunicorn.conf.py compliance.wsgi`.

deploy/systemd/compliance-web.service runs it with /etc/compliance/compliance.env. The few values
a host may need to change come from the environment (WEB_BIND, WEB_CONCURRENCY, WEB_THREADS,
WEB_ACCESS_LOG, FORWARDED_ALLOW_IPS); the rest are fixed here with the reason beside each. A bad
value stops gunicorn at start with the variable named (`gunicorn --check-config` reports it too).
"""

import os


def _whole_number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a whole number of 1 or more, got {raw!r}")
    return value


def _cores() -> int:
    # The cores this process may run on (a CPU affinity or a container's cpuset), not the host's.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Where the load balancer reaches this host: one address or several, comma-separated
# (`unix:/run/compliance-web/web.sock` also works for a proxy on the same host).
bind = [b.strip() for b in os.environ.get("WEB_BIND", "0.0.0.0:8000").split(",") if b.strip()]

# gthread: a worker's threads share one process, and idle keep-alive connections wait in the
# worker's poller without holding a thread. Relays keep connections open and send a check per
# message: each new TCP (and TLS, at the balancer) handshake would cost more than the check.
worker_class = "gthread"
# Requests spend most of their time waiting for PostgreSQL, so two workers per core keep the
# cores busy; each thread holds one database connection (DB_CONN_MAX_AGE), so size PostgreSQL's
# max_connections for hosts x WEB_CONCURRENCY x WEB_THREADS (docs/deploy.md, "Connections").
workers = _whole_number("WEB_CONCURRENCY", 2 * _cores())
threads = _whole_number("WEB_THREADS", 2)
# Connections one worker keeps open at once, idle keep-alive ones included.
worker_connections = 1000

# Keep an idle connection longer than the load balancer does (AWS ALB and most others: 60 s), so
# the balancer, not gunicorn, closes it: a connection gunicorn closes just as the balancer
# reuses it is a 502 to a relay.
keepalive = 75
# A gthread worker reports to the master between requests, not per request, so this only
# catches a worker whose loop is stuck; long batch checks and streamed exports are not cut.
timeout = 60
# On `systemctl reload` or stop, requests in flight (an export, a 100,000-address batch check)
# get this long to finish; compliance-web.service waits longer than this before SIGKILL.
graceful_timeout = 60

# Recycle each worker after about this many requests, so memory a request leaves behind cannot
# grow for ever; the jitter keeps the workers of a host from restarting at the same moment.
max_requests = 20_000
max_requests_jitter = 2_000

# The app is loaded in each worker, not in the master: `systemctl reload compliance-web` (HUP)
# starts workers on the new code and retires the old ones without dropping a request, and each
# worker runs the start-up checks of compliance/wsgi.py. A worker that cannot boot stops the
# master, so systemd sees the failure instead of a loop of restarts.
preload_app = False

# gunicorn sets the request's scheme from X-Forwarded-Proto only when the request comes from one
# of these addresses: the load balancers (comma-separated addresses or networks). Django trusts
# the header itself with BEHIND_TLS_PROXY=true, and X-Forwarded-For with TRUSTED_PROXY_COUNT, so
# the web hosts must be reachable only through the balancers (firewall them).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# The service writes its own line per request (compliance.request, with the API key or staff user
# and LOG_FORMAT=json): gunicorn's access log is off unless WEB_ACCESS_LOG names a file or "-"
# (the journal). When on, it records what the service's line does not: the balancer's address,
# the forwarded chain, bytes sent and the time including the write to the client.
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
access_log_format = (
    '%(h)s "%({x-forwarded-for}i)s" %(t)s "%(r)s" %(s)s %(B)s %(M)sms "%(a)s" pid=%(p)s'
)
errorlog = "-"
# Messages a worker prints outside logging (a crash in a C extension) reach the journal too.
capture_output = True
proc_name = "compliance-web"

# The heartbeat file is touched often: keep it in memory, not on a disk that may stall.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
# Under systemd (RuntimeDirectory=) the control socket of `gunicornc` lives in /run/compliance-web;
# elsewhere gunicorn's default applies. Older gunicorn versions ignore this name.
if os.environ.get("RUNTIME_DIRECTORY"):
    control_socket = os.path.join(os.environ["RUNTIME_DIRECTORY"], "gunicorn.ctl")
