"""Email that is never lost: written with the change it reports, sent by the worker exactly once,
retried when delivery fails; the packing list at each cutoff and the reminder, each once."""
import datetime
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import app as app_module
import jobs
import worker
from conftest import PASSWORD, run_worker, workers_at_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UTC = datetime.timezone.utc
SATURDAY = datetime.date(2026, 12, 5)
SATURDAY_CUTOFF = datetime.datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def outbox(db):
    return db.rows("SELECT dedupe_key, recipient, subject, body_text, sent_at, failed_at, attempts FROM email_outbox"
                   " ORDER BY email_id")


def order_for_saturday(client, auth, db, world, gate, customer="jane@example.com", quantity=2):
    db.add_to_cart(db.value("SELECT customer_id FROM customer WHERE email = %s", (customer,)), world.product, quantity)
    auth.login_customer(customer)
    response = client.post("/checkout", data={f"when_{world.producer}": f"{gate}@{SATURDAY.isoformat()}"})
    assert response.status_code == 302
    return db.value("SELECT MAX(order_id) FROM orders")


# --- Written in the same transaction as the change -------------------------------

def test_a_checkout_refused_for_stock_writes_no_email(client, auth, db, world):
    db.add_to_cart(world.customer, world.product, 60)
    auth.login_customer()
    assert client.post("/checkout", data=world.choose()).status_code == 409
    assert outbox(db) == ()


def test_a_checkout_promises_one_confirmation_and_one_email_per_producer_written_as_sent(app, client, auth, db,
                                                                                          world):
    db.add_to_cart(world.customer, world.product, 1)
    db.add_to_cart(world.customer, world.other_product, 2)
    auth.login_customer()
    client.post("/checkout", data=world.choose())
    farm, dairy = (db.value("SELECT order_id FROM orders WHERE customer_id = %s AND producer_id = %s AND option_id"
                            " IS NOT NULL", (world.customer, producer)) for producer in world.producers)
    assert db.rows("SELECT dedupe_key, template, about, recipient, body_text FROM email_outbox ORDER BY email_id") == (
        {"dedupe_key": f"checkout:{farm}", "template": "order_confirmation", "about": f"{farm},{dairy}",
         "recipient": None, "body_text": None},
        {"dedupe_key": f"order-new:{farm}", "template": "new_order", "about": str(farm), "recipient": None,
         "body_text": None},
        {"dedupe_key": f"order-new:{dairy}", "template": "new_order", "about": str(dairy), "recipient": None,
         "body_text": None})
    run_worker(app)
    assert [(row["dedupe_key"], row["recipient"]) for row in outbox(db)] == [
        (f"checkout:{farm}", "jane@example.com"), (f"order-new:{farm}", "farm@example.com"),
        (f"order-new:{dairy}", "dairy@example.com")]
    confirmation = outbox(db)[0]
    assert f"#{farm}" in confirmation["subject"] and f"#{dairy}" in confirmation["subject"]
    assert "Hartley Farm" in confirmation["body_text"] and "Rosehill Dairy" in confirmation["body_text"]
    assert all(row["sent_at"] for row in outbox(db))
    sent = sorted(os.listdir(app.config["OUTBOX_FOLDER"]))
    assert len(sent) == 3
    run_worker(app)
    assert sorted(os.listdir(app.config["OUTBOX_FOLDER"])) == sent, "written and sent once"


def test_a_promised_email_is_written_once_and_a_retry_sends_it_as_first_written(app, client, auth, db, world, smtp):
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    client.post("/checkout", data=world.choose())
    order_id = db.value("SELECT MAX(order_id) FROM orders")
    smtp.refuse = "451 Try again later"
    run_worker(app)
    written = db.rows("SELECT dedupe_key, subject, body_text FROM email_outbox ORDER BY email_id")
    assert all(row["body_text"] for row in written) and db.value("SELECT COUNT(*) FROM email_outbox"
                                                                 " WHERE sent_at IS NULL") == 2
    db.execute("UPDATE customer SET first_name = 'Janet' WHERE customer_id = %s", (world.customer,))
    db.execute("UPDATE email_outbox SET send_after = UTC_TIMESTAMP(6)")
    smtp.refuse = None
    run_worker(app)
    smtp.wait_for(2)
    assert db.rows("SELECT dedupe_key, subject, body_text FROM email_outbox ORDER BY email_id") == written
    assert f"New order #{order_id} from Jane: By arrangement" in [message["Subject"] for message in smtp.messages]


def test_a_promised_email_whose_orders_are_gone_fails_alone(app, db, world):
    db.execute("INSERT INTO email_outbox (dedupe_key, template, about) VALUES ('gone', 'new_order', '999999'),"
               " ('kept', NULL, NULL)")
    db.execute("UPDATE email_outbox SET recipient = 'a@x.org', subject = 'Hi', body_text = 'One.'"
               " WHERE dedupe_key = 'kept'")
    app.config["MAIL_MAX_ATTEMPTS"] = 1
    run_worker(app)
    rows = {row["dedupe_key"]: row for row in db.rows("SELECT dedupe_key, sent_at, failed_at, last_error"
                                                       " FROM email_outbox")}
    assert rows["kept"]["sent_at"] and rows["gone"]["failed_at"] and "no longer there" in rows["gone"]["last_error"]


def test_the_worker_delivers_by_smtp_with_the_slot_the_address_and_the_total(client, auth, db, world, clock, gate, smtp):
    db.execute("UPDATE producer SET payment_info = 'Cash at the gate.' WHERE producer_id = %s", (world.producer,))
    clock(datetime.datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    order_id = order_for_saturday(client, auth, db, world, gate)
    smtp.wait_for(2)
    customer, = smtp.to("jane@example.com")
    text = customer.get_payload(decode=True).decode()
    for expected in [f"Order #{order_id} from Hartley Farm", "2 x Potatoes (kg) at £1.80: £3.60", "Total: £3.60",
                     "Where: 1 Farm Lane", "When: Sat 5 Dec 2026, 09:00–12:00 GMT", "How to pay: Cash at the gate.",
                     f"https://shop.example/orders/{order_id}"]:
        assert expected in text, expected
    producer, = smtp.to("farm@example.com")
    text = producer.get_payload(decode=True).decode()
    assert "2 x Potatoes" in text and "Customer: Jane, jane@example.com" in text
    assert "Sat 5 Dec 2026, 09:00–12:00 GMT" in text and f"https://shop.example/dashboard/orders/{order_id}" in text
    assert all(row["sent_at"] is not None and row["attempts"] == 1 for row in outbox(db))
    run_worker(smtp.app)
    assert len(smtp.messages) == 2, "a second round sends nothing again"


def test_a_delivery_that_fails_is_retried_then_left_failed_for_the_operator(app, client, auth, db, world, smtp,
                                                                             operator):
    app.config.update(MAIL_RETRY_SECONDS=0, MAIL_MAX_ATTEMPTS=3)
    smtp.refuse = "451 4.3.0 Mailbox busy, try again later"
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    client.post("/checkout", data={f"when_{world.producer}": f"{world.collection[world.producer]}@arranged"})
    run_worker(app)
    rows = outbox(db)
    assert len(rows) == 2 and all(row["attempts"] == 3 and row["failed_at"] and row["sent_at"] is None for row in rows)
    assert "451" in db.value("SELECT last_error FROM email_outbox LIMIT 1")
    assert smtp.messages == []
    smtp.refuse = None
    run_worker(app)
    assert smtp.messages == [], "a failed email waits for the operator"
    email_id = db.value("SELECT MIN(email_id) FROM email_outbox")
    auth.login_operator()
    assert 'id="failed-emails">2<' in client.get("/admin").get_data(as_text=True)
    assert client.post(f"/admin/emails/{email_id}/retry").status_code == 302
    run_worker(app)
    assert len(smtp.messages) == 1 and db.row("SELECT sent_at, failed_at FROM email_outbox WHERE email_id = %s",
                                              (email_id,))["failed_at"] is None


def test_an_smtp_server_that_does_not_answer_is_a_failure_too(app, db, world, client, auth):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=1, MAIL_RETRY_SECONDS=3600)
    db.add_to_cart(world.customer, world.product, 1)
    auth.login_customer()
    client.post("/checkout", data={f"when_{world.producer}": f"{world.collection[world.producer]}@arranged"})
    run_worker(app)
    row = db.row("SELECT attempts, sent_at, failed_at, last_error, send_after > UTC_TIMESTAMP(6) AS later"
                 " FROM email_outbox LIMIT 1")
    assert row["attempts"] == 1 and row["sent_at"] is None and row["failed_at"] is None and row["later"] == 1
    assert "Connection refused" in row["last_error"] or "Errno" in row["last_error"]


@pytest.mark.parametrize("round_", range(8))
def test_two_workers_at_once_deliver_each_message_exactly_once(app, db, smtp, round_):
    with app.app_context():
        for n in range(30):
            app_module.mail.enqueue(f"bulk:{round_}:{n}", f"person{n}@example.com", f"Message {n}", "Hello.")
    workers_at_once(app, worker.run_round)
    deadline = time.monotonic() + 10
    while len(smtp.messages) < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    subjects = sorted(message["Subject"] for message in smtp.messages)
    assert subjects == sorted(f"Message {n}" for n in range(30)), "each delivered, none twice"
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NOT NULL AND attempts = 1") == 30


def test_writing_the_same_message_twice_keeps_one(app, db):
    with app.app_context():
        app_module.mail.enqueue("once", "a@example.com", "Hi", "One.")
        app_module.mail.enqueue("once", "a@example.com", "Hi", "Two.")
    assert [row["body_text"] for row in outbox(db)] == ["One."]


# --- Status changes --------------------------------------------------------------------

def test_the_customer_hears_each_step_and_a_cancellation_by_the_producer(client, auth, db, world):
    auth.login_producer()
    for status in ["confirmed", "ready"]:
        client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": status})
    other = db.add_order(world.customer, [(world.product, 1, "1.80")], order_type="delivery")
    for status in ["confirmed", "out_for_delivery"]:
        client.post("/dashboard/update-order-status", data={"order_id": other, "status": status})
    third = db.add_order(world.customer, [(world.product, 1, "1.80")])
    client.post("/dashboard/update-order-status", data={"order_id": third, "status": "cancelled"})
    subjects = [(row["recipient"], row["subject"]) for row in outbox(db)]
    assert subjects == [
        ("jane@example.com", f"Order #{world.order} is confirmed"),
        ("jane@example.com", f"Order #{world.order} is ready to collect"),
        ("jane@example.com", f"Order #{other} is confirmed"),
        ("jane@example.com", f"Order #{other} is out for delivery"),
        ("jane@example.com", f"Order #{third} was cancelled by Hartley Farm")]
    assert "Nothing was charged" in outbox(db)[-1]["body_text"]
    client.post("/dashboard/update-order-status", data={"order_id": world.order, "status": "completed"})
    completed = outbox(db)[-1]
    assert len(outbox(db)) == 6 and completed["subject"] == f"Your invoice for order #{world.order} from Hartley Farm"
    invoice_id = db.value("SELECT invoice_id FROM invoice WHERE order_id = %s", (world.order,))
    assert f"/invoices/{invoice_id}" in completed["body_text"]


def test_a_customer_cancelling_their_own_order_is_not_emailed_but_the_producer_is(client, auth, db, world):
    auth.login_customer()
    client.post(f"/orders/{world.order}/cancel")
    assert db.value("SELECT status FROM orders WHERE order_id = %s", (world.order,)) == "cancelled"
    assert [row["recipient"] for row in outbox(db)] == ["farm@example.com"]


# --- Jobs: once per occurrence, once per order ------------------------------------------

def run_concurrently(app, job, count=2):
    barrier = threading.Barrier(count)
    errors = []

    def run():
        try:
            with app.app_context():
                barrier.wait()
                job()
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


def test_the_cutoff_packing_list_goes_out_once_across_two_workers_and_a_restart(
        app, client, auth, db, world, clock, gate, smtp, monkeypatch):
    clock(datetime.datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    first = order_for_saturday(client, auth, db, world, gate, quantity=2)
    second = order_for_saturday(client, auth, db, world, gate, customer="tom@example.com", quantity=3)
    db.execute("DELETE FROM email_outbox")
    clock(SATURDAY_CUTOFF - datetime.timedelta(seconds=1))
    run_concurrently(app, jobs.close_ordering)
    assert db.value("SELECT COUNT(*) FROM occurrence_close") == 0, "not before the cutoff"

    clock(SATURDAY_CUTOFF + datetime.timedelta(seconds=1))
    real_send = app_module.mail.send

    def crash_once(*args, **kwargs):
        monkeypatch.setattr(app_module.mail, "send", real_send)
        raise RuntimeError("the worker died mid-job")

    monkeypatch.setattr(app_module.mail, "send", crash_once)
    with app.app_context(), pytest.raises(RuntimeError):
        jobs.close_ordering()
    assert db.value("SELECT COUNT(*) FROM occurrence_close") == 0, "the half-done job left nothing behind"

    run_concurrently(app, jobs.close_ordering)
    run_concurrently(app, jobs.close_ordering)
    assert db.rows("SELECT fulfilment_date, orders FROM occurrence_close") == ({"fulfilment_date": SATURDAY, "orders": 2},)
    packing = [row for row in outbox(db) if row["dedupe_key"].startswith("packing:")]
    assert len(packing) == 1 and packing[0]["recipient"] == "farm@example.com"
    text = packing[0]["body_text"]
    assert "5 x Potatoes (kg)" in text and f"#{first} Jane" in text and f"#{second} Tom" in text
    smtp.wait_for(1)
    run_worker(app)
    assert len(smtp.to("farm@example.com")) == 1


def test_the_reminder_goes_out_once_from_reminder_hour_the_day_before(app, client, auth, db, world, clock, gate):
    clock(datetime.datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    order_id = order_for_saturday(client, auth, db, world, gate)
    db.execute("DELETE FROM email_outbox")
    friday_six_pm = datetime.datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # GMT in December
    clock(friday_six_pm - datetime.timedelta(seconds=1))
    run_concurrently(app, jobs.send_reminders)
    assert outbox(db) == ()
    clock(friday_six_pm)
    run_concurrently(app, jobs.send_reminders)
    run_concurrently(app, jobs.send_reminders)
    reminders = outbox(db)
    assert [(row["dedupe_key"], row["recipient"]) for row in reminders] == [(f"reminder:{order_id}", "jane@example.com")]
    assert "Sat 5 Dec 2026, 09:00–12:00 GMT" in reminders[0]["subject"]
    assert db.value("SELECT reminder_sent_at FROM orders WHERE order_id = %s", (order_id,)) is not None


@pytest.mark.parametrize("change", [
    "UPDATE customer SET reminders = 0 WHERE email = 'jane@example.com'",
    "UPDATE orders SET status = 'cancelled' WHERE option_id IS NOT NULL",
])
def test_no_reminder_when_turned_off_or_cancelled(app, client, auth, db, world, clock, gate, change):
    clock(datetime.datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    order_for_saturday(client, auth, db, world, gate)
    db.execute("DELETE FROM email_outbox")
    db.execute(change)
    clock(datetime.datetime(2026, 12, 4, 20, 0, tzinfo=UTC))
    with app.app_context():
        jobs.send_reminders()
    assert outbox(db) == ()


def test_customers_turn_reminders_off_on_their_account_page(client, auth, db, world):
    auth.login_customer()
    assert 'name="reminders"' in client.get("/account").get_data(as_text=True)
    response = client.post("/account", data={"action": "reminders"})
    assert response.status_code == 302
    assert db.value("SELECT reminders FROM customer WHERE customer_id = %s", (world.customer,)) == 0
    client.post("/account", data={"action": "reminders", "reminders": "y"})
    assert db.value("SELECT reminders FROM customer WHERE customer_id = %s", (world.customer,)) == 1
    auth.login_producer()
    assert client.post("/account", data={"action": "reminders", "reminders": "y"}).status_code == 400


def test_the_worker_runs_until_stopped_and_says_so(test_database, db, world, tmp_path):
    """The real command, as `make run` starts it: it delivers what is queued, then stops cleanly on SIGTERM."""
    db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text) VALUES ('w', 'a@x.org', 'Hi', 'x')")
    env = dict(os.environ, MYSQL_DB=test_database, SMTP_HOST="", OUTBOX_FOLDER=str(tmp_path), WORKER_POLL_SECONDS="1")
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not os.listdir(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(os.listdir(tmp_path)) == 1
        assert db.value("SELECT COUNT(*) FROM worker_heartbeat") >= 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "stopped" in process.stdout.read()
    assert db.value("SELECT sent_at IS NOT NULL FROM email_outbox WHERE dedupe_key = 'w'") == 1


def test_a_password_reset_is_recorded_by_the_request_and_answered_once_by_the_worker(app, client, db, world):
    """F4: known and unknown emails do the same work in the request (one request row each); the worker
    writes a link to the outbox for the real account only, once however often it runs."""
    client.post("/password/forgot/customer", data={"email": "jane@example.com"})
    client.post("/password/forgot/customer", data={"email": "nobody@example.com"})
    requests = list(db.rows("SELECT role, email, client, answered_at FROM password_reset_request ORDER BY request_id"))
    assert requests == [{"role": "customer", "email": "jane@example.com", "client": "ip:127.0.0.1", "answered_at": None},
                        {"role": "customer", "email": "nobody@example.com", "client": "ip:127.0.0.1",
                         "answered_at": None}]
    assert not outbox(db), "nothing is looked up or written to the outbox in the request"
    with app.app_context():
        jobs.answer_reset_requests()
        jobs.answer_reset_requests()
    rows = outbox(db)
    assert len(rows) == 1 and rows[0]["recipient"] == "jane@example.com" and rows[0]["sent_at"] is None
    assert "/password/reset/" in rows[0]["body_text"]
    assert PASSWORD not in rows[0]["body_text"]
    assert db.value("SELECT COUNT(*) FROM password_reset_request WHERE answered_at IS NULL") == 0


# --- A poisoned message, a stopped worker, a dead worker ----------------------------------------

def queue(app, count, prefix="m", subject="Message {n}"):
    with app.app_context():
        for n in range(count):
            app_module.mail.enqueue(f"{prefix}:{n}", f"person{n}@example.com", subject.format(n=n), "Hello.")


def test_a_line_separator_in_an_old_subject_is_sent_on_one_line_and_stops_no_other_email(app, db, smtp):
    """A name written before forms refused U+2028 reaches a subject; its neighbours in the batch still go."""
    with app.app_context():
        app_module.mail.enqueue("confirm", "jane@example.com", "Your order", "Thanks.")
        app_module.mail.enqueue("poison", "farm@example.com", "New order #12 from Eve\u2028Mallory\u0085x", "New.")
        app_module.mail.enqueue("reset", "tom@example.com", "Choose a new password", "Link.")
    smtp.wait_for(3)
    assert sorted(message["Subject"] for message in smtp.messages) == [
        "Choose a new password", "New order #12 from Eve Mallory x", "Your order"]
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NOT NULL AND attempts = 1") == 3


def test_any_error_building_a_message_is_its_own_failure_retried_later(app, db, smtp, monkeypatch):
    app.config.update(MAIL_RETRY_SECONDS=600)
    queue(app, 5)
    build = app_module.mail.build

    def build_or_break(row):
        if row["dedupe_key"] == "m:2":
            raise ValueError("a bug in one message")
        return build(row)

    monkeypatch.setattr(app_module.mail, "build", build_or_break)
    smtp.wait_for(4)
    time.sleep(0.1)
    assert sorted(message["Subject"] for message in smtp.messages) == [f"Message {n}" for n in (0, 1, 3, 4)]
    poisoned = db.row("SELECT sent_at, failed_at, claimed_until, last_error, attempts,"
                      " send_after > UTC_TIMESTAMP(6) + INTERVAL 500 SECOND AS later"
                      " FROM email_outbox WHERE dedupe_key = 'm:2'")
    assert poisoned == {"sent_at": None, "failed_at": None, "claimed_until": None, "attempts": 1, "later": 1,
                        "last_error": "ValueError: a bug in one message"}


class SlowInbox:
    """An SMTP server that takes a while over each message, so a worker can be stopped mid-batch."""

    def __init__(self, seconds):
        self.seconds, self.messages = seconds, []

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        await asyncio.sleep(self.seconds)
        self.messages.append(envelope.content)
        return "250 Message accepted"


def test_sigterm_finishes_the_message_in_flight_releases_the_other_claims_and_exits_in_seconds(
        app, test_database, db):
    from aiosmtpd.controller import Controller
    from conftest import free_port
    queue(app, 6)
    inbox = SlowInbox(1.5)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    env = dict(os.environ, MYSQL_DB=test_database, SMTP_HOST="127.0.0.1", SMTP_PORT=str(controller.port),
               WORKER_POLL_SECONDS="1")
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while db.value("SELECT COUNT(*) FROM email_outbox WHERE claimed_by IS NOT NULL") < 6:
            assert time.monotonic() < deadline, "the worker claimed nothing"
            time.sleep(0.05)
        time.sleep(0.3)  # the first message is on its way
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        took = time.monotonic() - stopped_at
    finally:
        if process.poll() is None:
            process.kill()
        controller.stop()
    assert took < 3, f"the worker took {took:.1f} s to stop"
    rows = db.rows("SELECT sent_at IS NOT NULL AS sent, claimed_until, attempts FROM email_outbox ORDER BY email_id")
    assert [row["sent"] for row in rows] == [1, 0, 0, 0, 0, 0] and len(inbox.messages) == 1
    assert all(row["claimed_until"] is None and row["attempts"] == 0 for row in rows[1:]), "released at once"
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=1)  # nothing listens: nobody else may send them
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NULL AND claimed_until IS NULL"
                    " AND send_after <= UTC_TIMESTAMP(6)") == 5, "due again for the next worker"


def heartbeat_pids(db):
    return {int(row["worker_id"].rsplit(":", 1)[1]) for row in db.rows(
        "SELECT worker_id FROM worker_heartbeat WHERE last_seen > UTC_TIMESTAMP(6) - INTERVAL 2 SECOND")}


def test_the_supervisor_starts_a_new_worker_when_one_is_killed_and_stops_both(test_database, db, tmp_path):
    env = dict(os.environ, MYSQL_DB=test_database, SMTP_HOST="", OUTBOX_FOLDER=str(tmp_path), WORKER_POLL_SECONDS="1")
    pidfile = tmp_path / "worker.pid"
    supervisor = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker", "--supervise",
                                   "--pidfile", str(pidfile)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not heartbeat_pids(db):
            assert time.monotonic() < deadline, "no worker started"
            time.sleep(0.1)
        assert int(pidfile.read_text()) == supervisor.pid
        (first,) = heartbeat_pids(db)
        assert first != supervisor.pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not heartbeat_pids(db) - {first}:
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.1)
        (second,) = heartbeat_pids(db) - {first}
        db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text) VALUES ('s', 'a@x.org', 'Hi',"
                   " 'x')")
        deadline = time.monotonic() + 20
        while not db.value("SELECT sent_at IS NOT NULL FROM email_outbox WHERE dedupe_key = 's'"):
            assert time.monotonic() < deadline, "the new worker sends email"
            time.sleep(0.1)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    output = supervisor.stdout.read()
    assert f"Worker process {first} died (exit code -9)" in output
    assert not pidfile.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)


def test_an_email_is_written_with_no_request_at_all(app, db, world):
    """The area functions run in the worker, with an app context and no request: links come from BASE_URL."""
    app.config["BASE_URL"] = "https://shop.example"
    with app.app_context():
        link = app_module.mail.site_url("reset_password", token="abc")
        app_module.mail.send("password_reset", "no-request", "jane@example.com", "Reset", link=link)
    assert link == "https://shop.example/password/reset/abc"
    row = db.row("SELECT recipient, body_text FROM email_outbox WHERE dedupe_key = 'no-request'")
    assert row["recipient"] == "jane@example.com" and link in row["body_text"]
