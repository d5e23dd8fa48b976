"""Webhooks that are never lost: producers and the operator register endpoints (a URL, the events it wants, a
secret); each event is written, with one delivery per endpoint that wants it, in the transaction of the change
it reports; the worker claims due deliveries and POSTs them, signed, retrying failures with backoff.

A delivery carries the headers Noeari-Event (its type), Noeari-Event-Id (the event's id, the same on every try,
so a receiver can drop a repeat) and Noeari-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" under
the endpoint's secret>. Only http(s) URLs whose host resolves to public addresses are taken, and only such
addresses are sent to, unless WEBHOOK_ALLOW_PRIVATE is set."""
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
import urllib.parse
import uuid

import requests
from flask import current_app

import db
import fulfilment
import measures
import shapes
from db import execute, query

EVENTS = {
    "order.placed": "An order was placed (a card order: once it is paid or authorized).",
    "order.changed": "An order's lines, time, weights, shortages or refunds changed.",
    "order.cancelled": "An order was cancelled.",
    "order.status_changed": "An order was confirmed, made ready, sent out or completed.",
    "stock.low": "A product's stock fell to its low-stock level or below.",
    "payment.succeeded": "A card payment for an order was taken.",
    "payment.refunded": "Money paid by card for an order went back to the card.",
}
ROLES = ("producer", "operator")
MAX_ENDPOINTS = 20
CLAIM_SECONDS = 300
BATCH = 20
MAX_BACKOFF_SECONDS = 6 * 3600
RECENT_DELIVERIES = 5


class EndpointRefused(Exception):
    """The URL or events cannot be registered; field and message say why."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field, self.message = field, message


# --- Where a webhook may go ---------------------------------------------------------------

def url_problem(url, allow_private):
    """Why a webhook may not be sent to url, in words, or None: only http(s), and (unless allow_private) only
    to a host all of whose addresses are public, so no one aims the server at its own network."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "That is not a URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Give an http:// or https:// URL."
    if parts.username or parts.password:
        return "Leave the user name and password out of the URL: the signature proves it is noeari."
    if allow_private:
        return None
    try:
        found = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return f"{parts.hostname} cannot be found: check the host name."
    addresses = {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in found}
    if not all(address.is_global for address in addresses):
        return (f"{parts.hostname} is a private, loopback or reserved address: webhooks go only to the public "
                "internet.")
    return None


# --- Endpoints ----------------------------------------------------------------------------

def endpoints(role, account_id):
    """The account's endpoints, each with its events as a list and its last few deliveries."""
    rows = query("SELECT endpoint_id, url, events, secret, created_at FROM webhook_endpoint"
                 " WHERE role = %s AND account_id = %s ORDER BY endpoint_id", (role, account_id))
    if not rows:
        return rows
    recent = query(
        "SELECT * FROM (SELECT d.endpoint_id, d.delivery_id, e.event_type, e.created_at, d.attempts, d.delivered_at,"
        " d.failed_at, d.last_error, ROW_NUMBER() OVER (PARTITION BY d.endpoint_id ORDER BY d.delivery_id DESC) AS n"
        " FROM webhook_delivery d JOIN webhook_event e ON e.event_id = d.event_id"
        " JOIN webhook_endpoint w ON w.endpoint_id = d.endpoint_id WHERE w.role = %s AND w.account_id = %s) recent"
        " WHERE n <= %s ORDER BY delivery_id DESC", (role, account_id, RECENT_DELIVERIES))
    for row in rows:
        row["events"] = row["events"].split(",")
        row["deliveries"] = [delivery for delivery in recent if delivery["endpoint_id"] == row["endpoint_id"]]
    return rows


@db.transactional
def register(role, account_id, url, events, secret=None):
    """Register an endpoint for the account; its row, with the secret (made here when none is given).
    EndpointRefused for a URL webhooks may not go to, no event or an unknown one, or too many endpoints."""
    url = (url or "").strip()
    if not url or len(url) > 500:
        raise EndpointRefused("url", "Give the endpoint's URL, at most 500 characters.")
    problem = url_problem(url, current_app.config["WEBHOOK_ALLOW_PRIVATE"])
    if problem:
        raise EndpointRefused("url", problem)
    unknown = [event for event in events if event not in EVENTS]
    if unknown or not events:
        raise EndpointRefused("events", "Choose at least one of the events." if not unknown
                              else f"Not an event: {unknown[0][:40]}.")
    execute("SELECT 1 FROM webhook_endpoint WHERE role = %s AND account_id = %s FOR UPDATE", (role, account_id))
    count = query("SELECT COUNT(*) AS n FROM webhook_endpoint WHERE role = %s AND account_id = %s",
                  (role, account_id), one=True)["n"]
    if count >= MAX_ENDPOINTS:
        raise EndpointRefused("url", f"You have {MAX_ENDPOINTS} endpoints already: remove one first.")
    secret = secret or "whsec_" + secrets.token_urlsafe(32)
    chosen = ",".join(event for event in EVENTS if event in events)
    endpoint_id = execute("INSERT INTO webhook_endpoint (role, account_id, url, events, secret)"
                          " VALUES (%s, %s, %s, %s, %s)", (role, account_id, url, chosen, secret)).lastrowid
    return query("SELECT endpoint_id, url, events, secret, created_at FROM webhook_endpoint WHERE endpoint_id = %s",
                 (endpoint_id,), one=True)


def remove(role, account_id, endpoint_id):
    """Remove one of the account's endpoints, with its deliveries (those not yet sent are not sent); whether
    there was one."""
    return execute("DELETE FROM webhook_endpoint WHERE endpoint_id = %s AND role = %s AND account_id = %s",
                   (endpoint_id, role, account_id)).rowcount == 1


# --- Events, in the transaction of their change -------------------------------------------

def emit(event_type, key, producer_id, data):
    """Write an event and a delivery for each endpoint that wants it (the producer's and the operator's), in
    the current transaction: sent once that commits, never if it rolls back. key names the change, so writing
    it again (a repeated request) adds nothing. Nothing is written when no endpoint wants it."""
    wanted = query("SELECT endpoint_id FROM webhook_endpoint WHERE FIND_IN_SET(%s, events)"
                   " AND (role = 'operator' OR (role = 'producer' AND account_id = %s))", (event_type, producer_id))
    if not wanted:
        return None
    event_id = str(uuid.uuid4())
    payload = json.dumps({"id": event_id, "type": event_type,
                          "created_at": shapes.instant(fulfilment.utc_now()), "data": data}, separators=(",", ":"))
    if execute("INSERT INTO webhook_event (event_id, dedupe_key, event_type, payload) VALUES (%s, %s, %s, %s)"
               " ON DUPLICATE KEY UPDATE event_id = event_id", (event_id, key[:190], event_type, payload)).rowcount != 1:
        return None
    execute("INSERT INTO webhook_delivery (event_id, endpoint_id) VALUES " + ", ".join(["(%s, %s)"] * len(wanted)),
            [value for row in wanted for value in (event_id, row["endpoint_id"])])
    return event_id


def stock_taken(product_id, taken):
    """After taking taken from a product's stock in the current transaction (its row locked by the UPDATE):
    stock.low when this took it from above its low-stock level to at or below it, so once per fall."""
    row = query("SELECT s.quantity_available, s.reorder_threshold, p.producer_id, p.name, p.unit FROM stock s"
                " JOIN product p ON p.product_id = s.product_id WHERE s.product_id = %s", (product_id,), one=True)
    if row is None or taken <= 0:
        return None
    if not row["quantity_available"] <= row["reorder_threshold"] < row["quantity_available"] + taken:
        return None
    return emit("stock.low", f"stock.low:{product_id}:{uuid.uuid4()}", row["producer_id"], {
        "product_id": product_id, "name": row["name"], "unit": row["unit"],
        "quantity_available": measures.plain(row["quantity_available"]),
        "low_stock_level": measures.plain(row["reorder_threshold"])})


# --- Delivering ---------------------------------------------------------------------------

def signature(secret, timestamp, body):
    """The Noeari-Signature header's value for a body sent at timestamp (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@db.transactional
def claim(worker_id, limit=BATCH):
    """Take up to limit due deliveries for worker_id, committed before any is sent (SKIP LOCKED: workers
    claim side by side)."""
    due = query("SELECT delivery_id FROM webhook_delivery WHERE delivered_at IS NULL AND failed_at IS NULL"
                " AND send_after <= UTC_TIMESTAMP(6) AND (claimed_until IS NULL OR claimed_until < UTC_TIMESTAMP(6))"
                " ORDER BY send_after, delivery_id LIMIT %s FOR UPDATE SKIP LOCKED", (limit,))
    if not due:
        return []
    ids = [row["delivery_id"] for row in due]
    among = ", ".join(["%s"] * len(ids))
    execute("UPDATE webhook_delivery SET claimed_by = %s, claimed_until = UTC_TIMESTAMP(6) + INTERVAL %s SECOND,"
            f" attempts = attempts + 1 WHERE delivery_id IN ({among})", [worker_id, CLAIM_SECONDS] + ids)
    return query("SELECT d.delivery_id, d.attempts, e.event_id, e.event_type, e.payload, w.url, w.secret"
                 " FROM webhook_delivery d JOIN webhook_event e ON e.event_id = d.event_id"
                 f" JOIN webhook_endpoint w ON w.endpoint_id = d.endpoint_id WHERE d.delivery_id IN ({among})"
                 " ORDER BY d.delivery_id", ids)


def deliver_due(worker_id, stopping=lambda: False):
    """Send every due delivery, a claimed batch at a time, until none is due or stopping() says stop; return
    (delivered, failed). Deliveries claimed but not tried are given back."""
    delivered = failed = 0
    while not stopping():
        batch = claim(worker_id)
        if not batch:
            break
        done = 0
        try:
            for row in batch:
                if stopping():
                    break
                if send_one(row, worker_id):
                    delivered += 1
                else:
                    failed += 1
                done += 1
        finally:
            if done < len(batch):
                release(worker_id, [row["delivery_id"] for row in batch[done:]])
    return delivered, failed


def post(row):
    """POST one delivery, signed; the answer's status code. Raises when the endpoint is refused or unreachable.
    No redirect is followed: it could lead anywhere."""
    config = current_app.config
    problem = url_problem(row["url"], config["WEBHOOK_ALLOW_PRIVATE"])
    if problem:
        raise EndpointRefused("url", problem)
    body = row["payload"].encode()
    timestamp = int(time.time())
    response = requests.post(row["url"], data=body, timeout=config["WEBHOOK_TIMEOUT_SECONDS"],
                             allow_redirects=False, headers={
                                 "Content-Type": "application/json", "User-Agent": "noeari-webhooks/1",
                                 "Noeari-Event": row["event_type"], "Noeari-Event-Id": row["event_id"],
                                 "Noeari-Signature": signature(row["secret"], timestamp, body)})
    return response.status_code


def send_one(row, worker_id):
    """Send one claimed delivery and record the outcome; True when the endpoint answered 2xx.

    Delivered is recorded by the next statement after the endpoint answers: a crash between the two is the one
    window in which an event can go twice, both times with the same Noeari-Event-Id."""
    try:
        status = post(row)
    except (requests.RequestException, EndpointRefused) as exc:
        record_failure(row, worker_id, None, f"{type(exc).__name__}: {exc}")
        return False
    if not 200 <= status < 300:
        record_failure(row, worker_id, status, f"The endpoint answered {status}.")
        return False
    execute("UPDATE webhook_delivery SET delivered_at = UTC_TIMESTAMP(6), claimed_until = NULL, last_status = %s,"
            " last_error = NULL WHERE delivery_id = %s AND claimed_by = %s", (status, row["delivery_id"], worker_id))
    return True


def release(worker_id, delivery_ids):
    """Give back claimed deliveries that were not tried; best effort (the claim otherwise runs out)."""
    among = ", ".join(["%s"] * len(delivery_ids))
    try:
        execute("UPDATE webhook_delivery SET claimed_until = NULL, attempts = attempts - 1"
                f" WHERE delivery_id IN ({among}) AND claimed_by = %s AND delivered_at IS NULL AND failed_at IS NULL",
                [*delivery_ids, worker_id])
    except db.MySQLdb.Error:
        current_app.logger.warning("Could not release %d claimed webhook deliveries.", len(delivery_ids))


def record_failure(row, worker_id, status, error):
    """Try again later, each time waiting longer, or after WEBHOOK_MAX_ATTEMPTS give up."""
    config = current_app.config
    current_app.logger.warning("Webhook delivery %s to %s failed (attempt %s): %s", row["delivery_id"], row["url"],
                               row["attempts"], error)
    if row["attempts"] >= config["WEBHOOK_MAX_ATTEMPTS"]:
        execute("UPDATE webhook_delivery SET failed_at = UTC_TIMESTAMP(6), claimed_until = NULL, last_status = %s,"
                " last_error = %s WHERE delivery_id = %s AND claimed_by = %s",
                (status, error[:1000], row["delivery_id"], worker_id))
        return
    wait = min(config["WEBHOOK_RETRY_SECONDS"] * 4 ** (row["attempts"] - 1), MAX_BACKOFF_SECONDS)
    execute("UPDATE webhook_delivery SET send_after = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, claimed_until = NULL,"
            " last_status = %s, last_error = %s WHERE delivery_id = %s AND claimed_by = %s",
            (wait, status, error[:1000], row["delivery_id"], worker_id))
