"""Email that is never lost: a message, rendered from templates/email/ with links from BASE_URL, is written to
the email_outbox table in the same transaction as the change it reports, and a worker claims due messages, delivers them by SMTP (or with no SMTP_HOST
into OUTBOX_FOLDER as .eml files), and records each outcome, retrying failures with backoff."""
import datetime
import hashlib
import os
import smtplib
import unicodedata
from email.message import EmailMessage
from email.utils import formatdate

from flask import current_app, render_template

import db
import outbox

CLAIM_SECONDS = 600  # a claimed batch is another worker's to take only after this long
BATCH = 20


def enqueue(dedupe_key, to, subject, text, html=None, delay_seconds=0):
    """Write a message to the outbox in the current unit of work: it is sent once that commits (and
    delay_seconds have passed), and never if it rolls back. A second message with the same dedupe_key is not
    written."""
    enqueue_all([(dedupe_key, to, subject, text, html, delay_seconds)])


def enqueue_all(messages):
    """enqueue for each (dedupe_key, to, subject, text, html, delay_seconds) of messages, in one statement."""
    if messages:
        db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text, body_html, send_after)"
                   " VALUES " + db.placeholders(messages, "(%s, %s, %s, %s, %s, UTC_TIMESTAMP(6) + INTERVAL %s SECOND)")
                   + " ON DUPLICATE KEY UPDATE email_id = email_id",
                   [value for key, to, subject, text, html, delay in messages
                    for value in (key[:190], to, subject[:255], text, html, delay)])


# template: writer(ids) -> (recipient, subject, context for templates/email/<template>.txt), or None when what it
# is about is gone; registered with @writes by the module whose records the email is about.
WRITERS = {}


def writes(template):
    """Register the writer of promised emails of template (promise_all)."""
    def register(writer):
        WRITERS[template] = writer
        return writer
    return register


def promise_all(emails):
    """Promise emails in the current unit of work, each (template, key, ids) written by the worker as it sends it:
    its recipient, subject and body from what ids are, then (write_promised). Like send_all, each goes out once
    that commits and never if it rolls back, and key makes it once only; the change costs one short row each."""
    if emails:
        db.execute("INSERT INTO email_outbox (dedupe_key, template, about, send_after) VALUES "
                   + db.placeholders(emails, "(%s, %s, %s, UTC_TIMESTAMP(6))") + " ON DUPLICATE KEY UPDATE email_id = email_id",
                   [value for template, key, ids in emails
                    for value in (key[:190], template, ",".join(str(int(i)) for i in ids))])


class Gone(Exception):
    """What a promised email was about is no longer there to write it from."""


@db.transactional
def write_promised(row):
    """Write a promised email, recipient, subject and body, from what it is about as it is now, and keep it so
    that a second try sends the same message; the row as written."""
    found = WRITERS[row["template"]]([int(i) for i in row["about"].split(",")])
    if found is None:
        raise Gone(f"{row['template']} about {row['about']}: no longer there")
    recipient, subject, context = found
    written = dict(row, recipient=recipient, subject=subject[:255], body_text=render(row["template"], **context))
    db.execute("UPDATE email_outbox SET recipient = %s, subject = %s, body_text = %s WHERE email_id = %s",
               (written["recipient"], written["subject"], written["body_text"], row["email_id"]))
    return written


def address_lines(text, indent=0):
    """An address as the lines it was written in, each after the first indented: for plain-text email."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return ("\n" + " " * indent).join(lines)


def render(template, **context):
    """The text of templates/email/<template>.txt."""
    return render_template(f"email/{template}.txt", **context)


def send(template, key, to, subject, **context):
    """Write an email rendered from templates/email/<template>.txt to the outbox, in the current unit of work:
    it goes out once that commits, and never if it rolls back; key makes it once only."""
    send_all([(template, key, to, subject, context)])


def send_all(emails):
    """send for each (template, key, to, subject, context) of emails, written in one statement."""
    enqueue_all([(key, to, subject, render(template, **context), None, 0) for template, key, to, subject, context in emails])


def site_url(endpoint, **values):
    """An absolute link for an email, from BASE_URL, never from a request's Host header; it works in the worker."""
    return current_app.config["BASE_URL"].rstrip("/") + current_app.url_map.bind("localhost").build(endpoint, values)


def build(row):
    """The email of an outbox row; its Message-ID comes from the dedupe key, so a resend is recognisably the same."""
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = one_line(row["recipient"])
    email["Subject"] = one_line(row["subject"])
    email["Date"] = formatdate(localtime=False)
    domain = current_app.config["MAIL_FROM"].rsplit("@", 1)[-1].strip(">") or "noeari.local"
    email["Message-ID"] = f"<{hashlib.sha256(row['dedupe_key'].encode()).hexdigest()[:32]}@{domain}>"
    email.set_content(row["body_text"])
    if row["body_html"]:
        email.add_alternative(row["body_html"], subtype="html")
    return email


def one_line(text):
    """text as one header line: line breaks and separators (U+2028, U+0085 and the like) and other control
    characters become single spaces, as a header cannot hold them. Forms refuse them; older rows may not."""
    return " ".join("".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).split())


def deliver(email):
    """Send by SMTP_HOST, or with no SMTP host write the message to OUTBOX_FOLDER; raise when it fails."""
    config = current_app.config
    if not config["SMTP_HOST"]:
        os.makedirs(config["OUTBOX_FOLDER"], mode=0o700, exist_ok=True)
        name = f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%S%f}-{email['Message-ID'][1:9]}.eml"
        path = os.path.join(config["OUTBOX_FOLDER"], name)
        # A message may hold a reset link: readable by this user alone.
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(bytes(email))
        current_app.logger.info("Email to %s written to %s", email["To"], path)
        return
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=15) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(email)


EMAILS = outbox.Queue("email_outbox", "email_id", "sent_at",
                      "SELECT email_id, dedupe_key, recipient, subject, body_text, body_html, template, about, attempts"
                      " FROM email_outbox WHERE email_id IN ({among}) ORDER BY email_id")


def deliver_due(worker_id, stopping=lambda: False, alive=lambda: None):
    """Deliver every due message, a claimed batch at a time, until none is due or stopping() says to stop;
    return (sent, failed). A message that cannot be built or sent, for whatever reason, is that message's
    failure alone. alive() is called before each claim."""
    return outbox.drain(EMAILS, worker_id, lambda row: send_one(row, worker_id), BATCH, CLAIM_SECONDS, stopping,
                        alive)


def send_one(row, worker_id):
    """Build and send one claimed message and record the outcome; True when it was sent.

    Sent is recorded by the next statement after the SMTP server accepts the message: a crash between
    the two is the one window in which a message can go out twice, both copies with the same Message-ID. A promised
    message is written first, and kept written: a second try sends it as the first did."""
    try:
        if row["body_text"] is None:
            row = write_promised(row)
        deliver(build(row))
    except Exception as exc:  # noqa: BLE001 (a bad address, header or template is this message's failure)
        record_failure(row, worker_id, exc)
        return False
    db.execute("UPDATE email_outbox SET sent_at = UTC_TIMESTAMP(6), claimed_until = NULL, last_error = NULL"
               " WHERE email_id = %s AND claimed_by = %s", (row["email_id"], worker_id))
    return True


def record_failure(row, worker_id, exc):
    """Try again later, each time waiting longer, or after MAIL_MAX_ATTEMPTS give up and leave it for the operator."""
    config = current_app.config
    error = f"{type(exc).__name__}: {exc}"[:1000]
    current_app.logger.warning("Email %s to %s failed (attempt %s): %s", row["email_id"], row["recipient"],
                               row["attempts"], error)
    if row["attempts"] >= config["MAIL_MAX_ATTEMPTS"]:
        db.execute("UPDATE email_outbox SET failed_at = UTC_TIMESTAMP(6), claimed_until = NULL, last_error = %s"
                   " WHERE email_id = %s AND claimed_by = %s", (error, row["email_id"], worker_id))
        return
    wait = outbox.backoff(config["MAIL_RETRY_SECONDS"], row["attempts"])
    db.execute("UPDATE email_outbox SET send_after = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, claimed_until = NULL,"
               " last_error = %s WHERE email_id = %s AND claimed_by = %s", (wait, error, row["email_id"], worker_id))


def retry(email_id):
    """Make a failed message due again, with a fresh set of attempts; return whether there was one to retry."""
    return db.execute("UPDATE email_outbox SET failed_at = NULL, attempts = 0, send_after = UTC_TIMESTAMP(6),"
                      " claimed_until = NULL WHERE email_id = %s AND failed_at IS NOT NULL", (email_id,)).rowcount == 1


def outbox_page(page, per_page, failed_only=False):
    """A page of the outbox (or of its failures), failures first, then those waiting, newest first; and how
    many there are. Never a message's body, which may hold a reset link."""
    where = "WHERE failed_at IS NOT NULL" if failed_only else ""
    total = db.query(f"SELECT COUNT(*) AS n FROM email_outbox {where}", one=True)["n"]
    emails = db.query("SELECT email_id, recipient, subject, created_at, attempts, sent_at, failed_at, last_error,"
                      f" send_after FROM email_outbox {where}"
                      " ORDER BY failed_at IS NULL, sent_at IS NOT NULL, email_id DESC LIMIT %s OFFSET %s",
                      (per_page, (page - 1) * per_page))
    return emails, total


def exists(email_id):
    return db.query("SELECT 1 FROM email_outbox WHERE email_id = %s", (email_id,), one=True) is not None
