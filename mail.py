"""Email: build a plain-text message and deliver it by SMTP, or with no SMTP_HOST into OUTBOX_FOLDER
as an .eml file."""
import datetime
import os
import secrets
import smtplib
import threading
from email.message import EmailMessage

from flask import current_app


def message(to, subject, body):
    """A plain-text message from MAIL_FROM."""
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = to
    email["Subject"] = subject
    email.set_content(body)
    return email


def deliver(email):
    """Send by SMTP_HOST, or with no SMTP host write the message to OUTBOX_FOLDER; raise when it fails."""
    config = current_app.config
    if not config["SMTP_HOST"]:
        os.makedirs(config["OUTBOX_FOLDER"], exist_ok=True)
        name = f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.eml"
        path = os.path.join(config["OUTBOX_FOLDER"], name)
        with open(path, "wb") as f:
            f.write(bytes(email))
        current_app.logger.info("Email to %s written to %s", email["To"], path)
        return
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=15) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(email)


def deliver_in_background(email):
    """Deliver from a thread of its own, so the page does not wait on the mail server."""
    app = current_app._get_current_object()

    def send():
        with app.app_context():
            try:
                deliver(email)
            except (OSError, smtplib.SMTPException):
                app.logger.exception("Could not send email to %s", email["To"])

    threading.Thread(target=send, daemon=True).start()
