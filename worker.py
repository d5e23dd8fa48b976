"""The background worker: `flask --app app worker` delivers the email outbox and runs the scheduled
jobs the app registers, until stopped; with --once it does what is due and exits."""
import logging
import os
import signal
import socket
import time

import click
from flask import current_app
from flask.cli import with_appcontext

import db
import mail


def init_app(app, jobs):
    """Register the worker command; jobs are the app's scheduled jobs, each run on every round."""
    app.extensions["noeari_jobs"] = list(jobs)
    app.cli.add_command(worker_command)


def heartbeat(worker_id):
    """Record that this worker is alive, for the health check."""
    db.execute("INSERT INTO worker_heartbeat (worker_id, started_at, last_seen) VALUES (%s, UTC_TIMESTAMP(6),"
               " UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE last_seen = UTC_TIMESTAMP(6)", (worker_id,))
    db.execute("DELETE FROM worker_heartbeat WHERE last_seen < UTC_TIMESTAMP(6) - INTERVAL 1 DAY")


def run_round(worker_id):
    """One round, in an app context of its own so no connection or transaction outlives it."""
    with current_app.app_context():
        heartbeat(worker_id)
        for job in current_app.extensions["noeari_jobs"]:
            job()
        return mail.deliver_due(worker_id)


@click.command("worker")
@click.option("--once", is_flag=True, help="Do what is due, then exit.")
@click.option("--pidfile", type=click.Path(dir_okay=False), help="Write the process id here while running.")
@with_appcontext
def worker_command(once, pidfile):
    """Deliver queued email and run scheduled jobs, every WORKER_POLL_SECONDS, until stopped."""
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    if current_app.logger.level == logging.NOTSET:
        current_app.logger.setLevel(logging.INFO)
    if once:
        sent, failed = run_round(worker_id)
        click.echo(f"Sent {sent} email{'' if sent == 1 else 's'}, {failed} failed.")
        return
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.append(True))
    if pidfile:
        with open(pidfile, "w", encoding="ascii") as f:
            f.write(f"{os.getpid()}\n")
    current_app.logger.info("Worker %s started.", worker_id)
    trouble = None
    while not stopping:
        try:
            run_round(worker_id)
            if trouble:
                current_app.logger.warning("Worker %s is working again.", worker_id)
                trouble = None
        except Exception as exc:  # a database outage or a bug: say so once per burst, and keep going
            if trouble != type(exc):
                current_app.logger.exception("Worker %s round failed; retrying every round until it works.", worker_id)
                trouble = type(exc)
        deadline = time.monotonic() + current_app.config["WORKER_POLL_SECONDS"]
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)
    if pidfile:
        os.unlink(pidfile)
    current_app.logger.info("Worker %s stopped.", worker_id)
