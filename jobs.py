"""The jobs the worker runs each round: packing lists when ordering closes, reminders the day before,
the answers to "forgot password" requests, and letting go of card checkouts never paid. Each writes its email in the transaction that records it
done, so a job runs once however many workers run it."""
import datetime

from flask import current_app

import accounts
import fulfilment
import mail
import orders
import payments
from db import execute, query, transactional


def close_ordering(now=None):
    """Once an occurrence's ordering has closed, send its producer the packing list: once per occurrence."""
    now = now or fulfilment.utc_now()
    today = fulfilment.local_today(now)
    # Orders are refused after their occurrence's cutoff, so the orders found here are all it will have.
    occurrences = query(
        "SELECT o.producer_id, o.option_id, o.fulfilment_date, o.slot_start, MAX(o.slot_end) AS slot_end,"
        " MAX(o.cutoff_hours) AS cutoff_hours, MAX(o.fulfilment_name) AS fulfilment_name, COUNT(*) AS orders"
        " FROM orders o WHERE o.fulfilment_date BETWEEN %s AND %s AND o.status NOT IN ('cancelled', 'awaiting_payment')"
        " AND o.option_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM occurrence_close c"
        "  WHERE c.producer_id = o.producer_id AND c.option_id = o.option_id"
        "  AND c.fulfilment_date = o.fulfilment_date AND c.slot_start = o.slot_start)"
        " GROUP BY o.producer_id, o.option_id, o.fulfilment_date, o.slot_start",
        (today - datetime.timedelta(days=1), today + datetime.timedelta(days=fulfilment.DAYS_AHEAD + 1)))
    for occurrence in occurrences:
        if now >= fulfilment.cutoff_instant(occurrence["fulfilment_date"], occurrence["slot_start"],
                                            occurrence["cutoff_hours"]):
            close_occurrence(occurrence)


@transactional
def close_occurrence(occurrence):
    """Record the occurrence as closed and write its packing list email, together; another worker's record wins."""
    if execute("INSERT IGNORE INTO occurrence_close (producer_id, option_id, fulfilment_date, slot_start, orders)"
               " VALUES (%s, %s, %s, %s, %s)", (occurrence["producer_id"], occurrence["option_id"],
                                                occurrence["fulfilment_date"], occurrence["slot_start"],
                                                occurrence["orders"])).rowcount != 1:
        return
    rows, picks, _ = orders.packing_list(occurrence["producer_id"], occurrence["fulfilment_date"],
                                         occurrence["option_id"], occurrence["slot_start"])
    producer = query("SELECT business_name, email FROM producer WHERE producer_id = %s",
                     (occurrence["producer_id"],), one=True)
    hub = query("SELECT f.drop_off, h.name FROM fulfilment_option f JOIN hub h ON h.hub_id = f.hub_id"
                " WHERE f.option_id = %s", (occurrence["option_id"],), one=True)
    when = fulfilment.format_window(occurrence["fulfilment_date"], occurrence["slot_start"], occurrence["slot_end"])
    key = "packing:{producer_id}:{option_id}:{fulfilment_date}:{slot_start}".format(**occurrence)
    mail.send("packing_list", key, producer["email"], f"Ordering closed: {len(rows)} to pack for {when}",
              producer=producer, occurrence=occurrence, when=when, orders=rows, picks=picks, hub=hub)


def send_reminders(now=None):
    """From REMINDER_HOUR the day before, remind each customer of their order: once, and only before it starts."""
    now = now or fulfilment.utc_now()
    reminder_time, today = datetime.time(current_app.config["REMINDER_HOUR"]), fulfilment.local_today(now)
    orders = query(
        "SELECT o.order_id, o.fulfilment_date, o.slot_start FROM orders o JOIN customer c ON c.customer_id = o.customer_id"
        " WHERE o.fulfilment_date IN (%s, %s) AND o.status IN ('pending', 'confirmed', 'ready', 'out_for_delivery')"
        " AND o.reminder_sent_at IS NULL AND c.reminders = 1 AND c.status = 'active'",
        (today, today + datetime.timedelta(days=1)))
    for order in orders:
        due = fulfilment.local_instant(order["fulfilment_date"] - datetime.timedelta(days=1), reminder_time)
        if due <= now < fulfilment.local_instant(order["fulfilment_date"], order["slot_start"]):
            remind(order["order_id"])


@transactional
def remind(order_id):
    if execute("UPDATE orders SET reminder_sent_at = UTC_TIMESTAMP() WHERE order_id = %s AND reminder_sent_at IS NULL",
               (order_id,)).rowcount != 1:
        return
    order = orders.load_order(order_id)
    mail.send("reminder", f"reminder:{order_id}", order["email"],
         f"Tomorrow: order #{order_id} from {order['business_name']}, {orders.order_when(order)}", order=order)


def answer_reset_requests():
    """Answer each recorded "forgot password" request once: a link when the email has an account, else nothing."""
    waiting = query("SELECT request_id FROM password_reset_request WHERE answered_at IS NULL"
                    " ORDER BY request_id LIMIT 100")
    for row in waiting:
        answer_reset_request(row["request_id"])
    execute("DELETE FROM password_reset_request WHERE requested_at < UTC_TIMESTAMP(6) - INTERVAL 1 DAY LIMIT 1000")
    execute("DELETE FROM signup_attempt WHERE attempted_at < UTC_TIMESTAMP(6) - INTERVAL 1 DAY LIMIT 1000")


@transactional
def answer_reset_request(request_id):
    if execute("UPDATE password_reset_request SET answered_at = UTC_TIMESTAMP(6)"
               " WHERE request_id = %s AND answered_at IS NULL", (request_id,)).rowcount != 1:
        return  # another worker answered it
    request_row = query("SELECT role, email FROM password_reset_request WHERE request_id = %s", (request_id,), one=True)
    account = accounts.account_by_email(request_row["role"], request_row["email"])
    if account is None:
        return
    token = accounts.reset_serializer().dumps({"role": request_row["role"], "id": account["id"],
                                      "fp": accounts.reset_fingerprint(account)})
    link = mail.site_url("reset_password", token=token)
    mail.send("password_reset", f"reset:{request_id}", account["email"], "Reset your noeari password", link=link)


def release_unpaid_checkouts(now=None):
    """Card payments past their hold: settled from Stripe when they went through, released otherwise."""
    if payments.enabled():
        payments.release_expired(now)


def send_card_refunds():
    """Refunds owed to cards, sent to Stripe once each."""
    if payments.enabled():
        payments.send_refunds()


def capture_weighed_card_payments():
    """Card payments for weighed goods, captured once every weight is in (or before they lapse)."""
    if payments.enabled():
        payments.capture_ready()


def reconcile_card_payments():
    """Each recent card payment compared with Stripe and the ledger, every few minutes."""
    if payments.enabled():
        payments.reconcile()


JOBS = [close_ordering, send_reminders, answer_reset_requests, release_unpaid_checkouts, send_card_refunds,
        capture_weighed_card_payments,
        reconcile_card_payments]
