"""gunicorn settings for noeari, shared by `make run`, production and `make bench`."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Under `make run` gunicorn listens on a unix socket behind nginx (GUNICORN_BIND); alone, on BIND.
bind = os.environ.get("GUNICORN_BIND") or os.environ.get("BIND", "127.0.0.1:5000")
# Its control socket stays in this checkout's var/ (or RUN_DIR), not one shared by every checkout of the user.
control_socket = os.path.join(os.environ.get("RUN_DIR") or os.path.join(HERE, "var"), "gunicorn.ctl")
# Rendering pages is CPU work that holds the GIL, so processes, not threads, use the cores:
# 2 per core plus 1 (gunicorn's advice), each with a second thread for the time spent waiting on MariaDB.
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * os.cpu_count() + 1)))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
worker_class = "gthread"
timeout = 30
accesslog = os.environ.get("ACCESS_LOG") or None  # "-" for stdout; off by default, as the proxy logs
errorlog = "-"


def when_ready(server):
    """Log, at start-up, which database setting to fix when the database cannot be reached.

    The check runs in a child process: importing the app here, in the master, would hand the old code
    to every worker that a reload (HUP, as `make run` sends) starts."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "check-db"], cwd=HERE,
                          capture_output=True, text=True)
    if done.returncode:
        problem = done.stderr.strip().removeprefix("Error: ") or f"exit code {done.returncode}"
        server.log.error("Database check failed: %s", problem)
    else:
        server.log.info("Database check passed.")
