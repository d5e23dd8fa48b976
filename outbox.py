"""Work promised in the transaction of a change and done later by the worker: the email outbox and webhook
deliveries. Each is a queue table whose rows wait until send_after, are claimed by one worker at a time
(claimed_by, claimed_until, attempts), and end done (their done column set) or failed (failed_at). This
module claims rows, works through them and gives back what was not tried, whatever the table; each queue's
module sends a row and records how it went."""
from collections import namedtuple

from flask import current_app

import db

# table and its key and done columns, and the statement that reads claimed rows ({among}: their keys).
Queue = namedtuple("Queue", "table key done claimed")
MAX_BACKOFF_SECONDS = 6 * 3600


def backoff(first_seconds, attempts):
    """How long to wait after a failed try: first_seconds, then 4× longer each time, at most 6 hours."""
    return min(first_seconds * 4 ** (attempts - 1), MAX_BACKOFF_SECONDS)


@db.transactional
def claim(queue, worker_id, limit, claim_seconds):
    """Take up to limit due rows for worker_id, committed before any is worked on.

    SKIP LOCKED lets workers claim side by side; on a cluster, two nodes' claims of one row conflict at
    commit, and the loser's whole claim is rolled back and made again."""
    due = db.query(f"SELECT {queue.key} FROM {queue.table} WHERE {queue.done} IS NULL AND failed_at IS NULL"
                   " AND send_after <= UTC_TIMESTAMP(6) AND (claimed_until IS NULL OR claimed_until < UTC_TIMESTAMP(6))"
                   f" ORDER BY send_after, {queue.key} LIMIT %s FOR UPDATE SKIP LOCKED", (limit,))
    if not due:
        return []
    ids = [row[queue.key] for row in due]
    among = db.placeholders(ids)
    db.execute(f"UPDATE {queue.table} SET claimed_by = %s, claimed_until = UTC_TIMESTAMP(6) + INTERVAL %s SECOND,"
               f" attempts = attempts + 1 WHERE {queue.key} IN ({among})", [worker_id, claim_seconds] + ids)
    return db.query(queue.claimed.format(among=among), ids)


def drain(queue, worker_id, send_one, limit, claim_seconds, stopping=lambda: False, alive=lambda: None):
    """Work through every due row, a claimed batch at a time, until none is due or stopping() says to stop;
    send_one(row) says whether it went. Rows claimed but not tried (stopping, or the round broke off) are given
    back, so none waits out its claim behind a stopped worker. alive() is called before each claim. Returns
    (done, failed)."""
    done = failed = 0
    while not stopping():
        alive()
        batch = claim(queue, worker_id, limit, claim_seconds)
        if not batch:
            break
        tried = 0
        try:
            for row in batch:
                if stopping():
                    break
                if send_one(row):
                    done += 1
                else:
                    failed += 1
                tried += 1
        finally:
            if tried < len(batch):
                release(queue, worker_id, [row[queue.key] for row in batch[tried:]])
    return done, failed


def release(queue, worker_id, ids):
    """Give back claimed rows that were not tried, as if never claimed; best effort, as the database may be
    what broke the round (the claim then runs out by itself)."""
    among = db.placeholders(ids)
    try:
        db.execute(f"UPDATE {queue.table} SET claimed_until = NULL, attempts = attempts - 1"
                   f" WHERE {queue.key} IN ({among}) AND claimed_by = %s AND {queue.done} IS NULL"
                   " AND failed_at IS NULL", [*ids, worker_id])
    except db.MySQLdb.Error:
        current_app.logger.warning("Could not release %d claimed rows of %s; they wait for their claim to run out.",
                                   len(ids), queue.table)
