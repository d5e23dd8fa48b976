"""The background worker: `flask --app app worker` delivers the email outbox and runs the scheduled
jobs the app registers, until stopped; with --once it does what is due and exits."""
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

import db
import mail
import webhooks


def init_app(app, jobs):
    """Register the worker command; jobs are the app's scheduled jobs, each run on every round."""
    app.extensions["noeari_jobs"] = list(jobs)
    app.cli.add_command(worker_command)


def heartbeat(worker_id):
    """Record that this worker is alive, for the health check: at each round, and before each batch of email."""
    db.execute("INSERT INTO worker_heartbeat (worker_id, started_at, last_seen) VALUES (%s, UTC_TIMESTAMP(6),"
               " UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE last_seen = UTC_TIMESTAMP(6)", (worker_id,))


def forget_old_workers():
    db.execute("DELETE FROM worker_heartbeat WHERE last_seen < UTC_TIMESTAMP(6) - INTERVAL 1 DAY")


WORKER_STALE_SECONDS = 120


def health():
    """The worker's and the outbox's state in figures, and what in it needs a person, in words: no worker
    seen for two minutes, emails given up on, or claims held by a worker that is gone."""
    row = db.query(
        "SELECT (SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NULL AND failed_at IS NULL) AS backlog,"
        " (SELECT COUNT(*) FROM email_outbox WHERE failed_at IS NOT NULL) AS failed,"
        " (SELECT COUNT(*) FROM email_outbox e WHERE e.sent_at IS NULL AND e.failed_at IS NULL"
        "  AND e.claimed_until IS NOT NULL AND (e.claimed_until < UTC_TIMESTAMP(6) OR NOT EXISTS ("
        "   SELECT 1 FROM worker_heartbeat w WHERE w.worker_id = e.claimed_by"
        "   AND w.last_seen > UTC_TIMESTAMP(6) - INTERVAL %s SECOND))) AS stuck,"
        " (SELECT TIMESTAMPDIFF(SECOND, MAX(last_seen), UTC_TIMESTAMP(6)) FROM worker_heartbeat) AS worker_age",
        (WORKER_STALE_SECONDS,), one=True)
    warnings = []
    if row["worker_age"] is None or row["worker_age"] > WORKER_STALE_SECONDS:
        warnings.append("no worker seen in the last two minutes: email and jobs wait")
    if row["failed"]:
        warnings.append(f"{row['failed']} email{'s have' if row['failed'] != 1 else ' has'} failed for good: "
                        "see the outbox and retry")
    if row["stuck"]:
        warnings.append(f"{row['stuck']} email{'s are' if row['stuck'] != 1 else ' is'} claimed by a worker that "
                        "is gone: they wait for the claim to run out")
    return {"outbox_backlog": row["backlog"], "outbox_failed": row["failed"], "outbox_stuck": row["stuck"],
            "worker_last_seen_seconds": row["worker_age"], "warnings": warnings}


def run_round(worker_id, stopping=lambda: False):
    """One round, in an app context of its own so no connection or transaction outlives it."""
    with current_app.app_context():
        heartbeat(worker_id)
        forget_old_workers()
        for job in current_app.extensions["noeari_jobs"]:
            if stopping():
                break
            job()
        webhooks.deliver_due(worker_id, stopping)
        return mail.deliver_due(worker_id, stopping, lambda: heartbeat(worker_id))


def stop_signals():
    """A list that SIGTERM or SIGINT makes true: checked between messages, so the one in flight finishes."""
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.append(True))
    return stopping


def nap(seconds, stopping):
    """Sleep up to seconds, waking at once when asked to stop."""
    deadline = time.monotonic() + seconds
    while not stopping and time.monotonic() < deadline:
        time.sleep(0.2)


def write_pidfile(pidfile):
    if pidfile:
        with open(pidfile, "w", encoding="ascii") as f:
            f.write(f"{os.getpid()}\n")


@click.command("worker")
@click.option("--once", is_flag=True, help="Do what is due, then exit.")
@click.option("--supervise", is_flag=True, help="Run the worker in a child process, and start another when it dies.")
@click.option("--pidfile", type=click.Path(dir_okay=False), help="Write the process id here while running.")
@with_appcontext
def worker_command(once, supervise, pidfile):
    """Deliver queued email and run scheduled jobs, every WORKER_POLL_SECONDS, until stopped."""
    if current_app.logger.level == logging.NOTSET:
        current_app.logger.setLevel(logging.INFO)
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    if once:
        sent, failed = run_round(worker_id)
        click.echo(f"Sent {sent} email{'' if sent == 1 else 's'}, {failed} failed.")
        return
    stopping = stop_signals()
    write_pidfile(pidfile)
    try:
        if supervise:
            run_supervisor(stopping)
        else:
            run_worker(worker_id, stopping)
    finally:
        if pidfile:
            os.unlink(pidfile)


def run_worker(worker_id, stopping):
    current_app.logger.info("Worker %s started.", worker_id)
    trouble = None
    while not stopping:
        try:
            run_round(worker_id, lambda: bool(stopping))
            if trouble:
                current_app.logger.warning("Worker %s is working again.", worker_id)
                trouble = None
        except Exception as exc:  # a database outage or a bug: say so once per burst, and keep going
            if trouble != type(exc):
                current_app.logger.exception("Worker %s round failed; retrying every round until it works.", worker_id)
                trouble = type(exc)
        nap(current_app.config["WORKER_POLL_SECONDS"], stopping)
    current_app.logger.info("Worker %s stopped.", worker_id)


RESTART_BACKOFF = (1, 60)  # seconds before the first restart, and at most
STEADY_SECONDS = 60  # a worker that ran this long before dying starts again after the shortest wait
STOP_GRACE_SECONDS = 20  # the message in flight may take the SMTP timeout (15 s) to finish


def run_supervisor(stopping):
    """Keep one worker process running: when it dies, start another, waiting longer after each quick death."""
    argv = [sys.executable, "-m", "flask", "--app", "app", "worker"]
    backoff = RESTART_BACKOFF[0]
    current_app.logger.info("Worker supervisor %s started.", os.getpid())
    while not stopping:
        started = time.monotonic()
        child = subprocess.Popen(argv, cwd=current_app.root_path)
        while child.poll() is None and not stopping:
            time.sleep(0.2)
        if stopping:
            stop_child(child)
            break
        ran = time.monotonic() - started
        backoff = RESTART_BACKOFF[0] if ran >= STEADY_SECONDS else backoff
        current_app.logger.error("Worker process %s died (exit code %s) after %.0f s; starting another in %d s.",
                                 child.pid, child.returncode, ran, backoff)
        nap(backoff, stopping)
        backoff = min(backoff * 2, RESTART_BACKOFF[1])
    current_app.logger.info("Worker supervisor %s stopped.", os.getpid())


def stop_child(child):
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
