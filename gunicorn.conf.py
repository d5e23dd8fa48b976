"""gunicorn settings for noeari, shared by `make run`, production and `make bench`."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_DIR = os.environ.get("RUN_DIR") or os.path.join(HERE, "var")

# Under `make run` gunicorn listens on a unix socket behind nginx (GUNICORN_BIND); alone, on BIND.
bind = os.environ.get("GUNICORN_BIND") or os.environ.get("BIND", "127.0.0.1:5000")
# scripts/services.sh replaces a running gunicorn by starting a second master beside it (USR2); a control
# socket per master would be one path for both, so it is off.
control_socket_disable = True
# Rendering pages is CPU work that holds the GIL, so processes, not threads, use the cores:
# 2 per core plus 1 (gunicorn's advice), each with a second thread for the time spent waiting on MariaDB.
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * os.cpu_count() + 1)))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
worker_class = "gthread"
timeout = 30
accesslog = os.environ.get("ACCESS_LOG") or None  # "-" for stdout; off by default, as the proxy logs
errorlog = "-"

# nginx closes a kept connection to gunicorn after UPSTREAM_IDLE_SECONDS without a request (scripts/services.sh
# writes this number into nginx.conf); gunicorn keeps it open for longer. So nginx is always the side that
# closes, and never sends a request (a POST it may not resend) on a connection gunicorn is closing.
UPSTREAM_IDLE_SECONDS = 10
keepalive = UPSTREAM_IDLE_SECONDS * 3


def when_ready(server):
    """Log, at start-up, which database setting to fix when the database cannot be reached; and note how
    many workers this master starts, for post_worker_init's readiness files.

    The check runs in a child process: importing the app here, in the master, would hand the old code
    to every worker that a reload starts."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "check-db"], cwd=HERE,
                          capture_output=True, text=True)
    if done.returncode:
        problem = done.stderr.strip().removeprefix("Error: ") or f"exit code {done.returncode}"
        server.log.error("Database check failed: %s", problem)
    else:
        server.log.info("Database check passed.")
    write_ready_file(f"{server.pid}.expected", str(server.num_workers))


def post_worker_init(worker):
    """This worker has loaded the app: it compiles every template now, so that no one's first page or checkout
    on it waits for that (about half a second in all), then says it takes requests: scripts/services.sh stops
    the old master of a reload only once every worker of the new one has said so."""
    environment = getattr(worker.wsgi, "jinja_env", None)
    for name in environment.list_templates() if environment else ():
        environment.get_template(name)
    write_ready_file(f"{worker.ppid}.{worker.pid}", "")


def write_ready_file(name, text):
    folder = os.path.join(RUN_DIR, "ready")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w", encoding="ascii") as f:
        f.write(text)
