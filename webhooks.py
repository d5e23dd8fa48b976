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
import requests.adapters
from flask import current_app

import db
import fulfilment
import measures
import outbox
import shapes
from db import execute, placeholders, query

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
RECENT_DELIVERIES = 5


class EndpointRefused(Exception):
    """The URL or events cannot be registered; field and message say why."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field, self.message = field, message


# --- Where a webhook may go ---------------------------------------------------------------

def destination(url, allow_private):
    """Where a webhook to url goes: (the URL's parts, the address to connect to). Only http(s), and (unless
    allow_private) only to a host all of whose addresses are public, so no one aims the server at its own
    network. EndpointRefused says why not, in words."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointRefused("url", "That is not a URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointRefused("url", "Give an http:// or https:// URL.")
    if parts.username or parts.password:
        raise EndpointRefused("url", "Leave the user name and password out of the URL: the signature proves it is "
                                     "noeari.")
    try:
        found = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise EndpointRefused("url", f"{parts.hostname} cannot be found: check the host name.") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in found]
    if not allow_private and not all(address.is_global for address in addresses):
        raise EndpointRefused("url", f"{parts.hostname} is a private, loopback or reserved address: webhooks go "
                                     "only to the public internet.")
    return parts, addresses[0]


def url_problem(url, allow_private):
    """Why a webhook may not be sent to url, in words, or None."""
    try:
        destination(url, allow_private)
    except EndpointRefused as refusal:
        return refusal.message
    return None


class PinnedAdapter(requests.adapters.HTTPAdapter):
    """Connects to the address that was checked, whatever the host name resolves to by then (a DNS answer
    that changes between the check and the connection cannot aim a delivery inward); TLS still checks the
    certificate against the host name."""

    def __init__(self, hostname):
        self.hostname = hostname
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs.update(server_hostname=self.hostname, assert_hostname=self.hostname)
        super().init_poolmanager(*args, **kwargs)


# --- Endpoints ----------------------------------------------------------------------------

ENDPOINT_COLUMNS = "endpoint_id, url, events, secret, created_at"


def endpoints(role, account_id):
    """The account's endpoints, each with its events as a list and its last few deliveries."""
    rows = query(f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint WHERE role = %s AND account_id = %s"
                 " ORDER BY endpoint_id", (role, account_id))
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
    added = query(f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint WHERE endpoint_id = %s", (endpoint_id,), one=True)
    return dict(added, events=added["events"].split(","))


def remove(role, account_id, endpoint_id):
    """Remove one of the account's endpoints, with its deliveries (those not yet sent are not sent); whether
    there was one."""
    return execute("DELETE FROM webhook_endpoint WHERE endpoint_id = %s AND role = %s AND account_id = %s",
                   (endpoint_id, role, account_id)).rowcount == 1


# --- Events, in the transaction of their change -------------------------------------------

# Endpoints hear of their own producer's orders and products; the operator's, of everyone's.
WANTS = "FIND_IN_SET(%s, w.events) AND (w.role = 'operator' OR (w.role = 'producer' AND w.account_id = {producer}))"


def wanting_order(event_type, order_id):
    """The endpoints that want event_type about an order: one statement, so an order no one listens for costs
    no more."""
    return wanting_orders(event_type, [order_id])[order_id]


def wanting_orders(event_type, order_ids):
    """{order_id: the endpoints that want event_type about it} for each of order_ids, in one statement."""
    wanted = {order_id: [] for order_id in order_ids}
    for row in query("SELECT o.order_id, w.endpoint_id FROM webhook_endpoint w JOIN orders o"
                     f" ON o.order_id IN ({placeholders(order_ids)}) WHERE "
                     + WANTS.format(producer="o.producer_id") + " ORDER BY o.order_id, w.endpoint_id",
                     (*order_ids, event_type)):
        wanted[row["order_id"]].append(row["endpoint_id"])
    return wanted


def emit(event_type, key, wanted, data):
    """Write an event and a delivery for each endpoint of wanted, in the current transaction: sent once that
    commits, never if it rolls back. key names the change, so writing it again (a repeated request) adds
    nothing. Returns the event's id, or None when nothing was written."""
    if not wanted:
        return None
    event_id = str(uuid.uuid4())
    payload = json.dumps({"id": event_id, "type": event_type,
                          "created_at": shapes.instant(fulfilment.utc_now()), "data": data}, separators=(",", ":"))
    if execute("INSERT INTO webhook_event (event_id, dedupe_key, event_type, payload) VALUES (%s, %s, %s, %s)"
               " ON DUPLICATE KEY UPDATE event_id = event_id", (event_id, key[:190], event_type, payload)).rowcount != 1:
        return None
    execute("INSERT INTO webhook_delivery (event_id, endpoint_id) VALUES " + placeholders(wanted, "(%s, %s)"),
            [value for endpoint_id in wanted for value in (event_id, endpoint_id)])
    return event_id


def stock_taken(product_id, taken):
    """After taking taken from a product's stock in the current transaction (its row locked by the UPDATE):
    stock.low when this took it from above its low-stock level to at or below it, so once per fall."""
    events = stocks_taken({product_id: taken})
    return events[0] if events else None


def stocks_taken(taken):
    """stock_taken for each product of taken ({product_id: amount taken}): one statement when none of them fell
    to its low-stock level, another for the endpoints that want to know of those that did."""
    taken = {product_id: amount for product_id, amount in taken.items() if amount > 0}
    if not taken:
        return []
    fell = [row for row in query(
        "SELECT s.product_id, s.quantity_available, s.reorder_threshold FROM stock s"
        f" WHERE s.product_id IN ({placeholders(taken)}) AND s.quantity_available <= s.reorder_threshold",
        list(taken)) if row["quantity_available"] + taken[row["product_id"]] > row["reorder_threshold"]]
    if not fell:
        return []
    rows = query("SELECT p.product_id, p.name, p.unit, (SELECT GROUP_CONCAT(w.endpoint_id) FROM webhook_endpoint w"
                 " WHERE " + WANTS.format(producer="p.producer_id") + ") AS wanted FROM product p"
                 f" WHERE p.product_id IN ({placeholders(fell)}) ORDER BY p.product_id",
                 ["stock.low", *(row["product_id"] for row in fell)])
    levels = {row["product_id"]: row for row in fell}
    return [emit("stock.low", f"stock.low:{row['product_id']}:{uuid.uuid4()}",
                 [int(n) for n in row["wanted"].split(",")], {
                     "product_id": row["product_id"], "name": row["name"], "unit": row["unit"],
                     "quantity_available": measures.plain(levels[row["product_id"]]["quantity_available"]),
                     "low_stock_level": measures.plain(levels[row["product_id"]]["reorder_threshold"])})
            for row in rows if row["wanted"]]


# --- Delivering ---------------------------------------------------------------------------

def signature(secret, timestamp, body):
    """The Noeari-Signature header's value for a body sent at timestamp (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


DELIVERIES = outbox.Queue(
    "webhook_delivery", "delivery_id", "delivered_at",
    "SELECT d.delivery_id, d.attempts, e.event_id, e.event_type, e.payload, w.url, w.secret"
    " FROM webhook_delivery d JOIN webhook_event e ON e.event_id = d.event_id"
    " JOIN webhook_endpoint w ON w.endpoint_id = d.endpoint_id WHERE d.delivery_id IN ({among})"
    " ORDER BY d.delivery_id")


def deliver_due(worker_id, stopping=lambda: False):
    """Send every due delivery, a claimed batch at a time, until none is due or stopping() says stop; return
    (delivered, failed)."""
    return outbox.drain(DELIVERIES, worker_id, lambda row: send_one(row, worker_id), BATCH, CLAIM_SECONDS,
                        stopping)


def post(row):
    """POST one delivery, signed, to the address its URL was checked at; the answer's status code. Raises when
    the endpoint is refused or unreachable. No redirect is followed: it could lead anywhere."""
    config = current_app.config
    parts, address = destination(row["url"], config["WEBHOOK_ALLOW_PRIVATE"])
    host = f"[{address}]" if address.version == 6 else str(address)
    pinned = parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host).geturl()
    body = row["payload"].encode()
    timestamp = int(time.time())
    with requests.Session() as session:
        session.mount(f"{parts.scheme}://", PinnedAdapter(parts.hostname))
        response = session.post(pinned, data=body, timeout=config["WEBHOOK_TIMEOUT_SECONDS"], allow_redirects=False,
                                headers={"Host": parts.netloc, "Content-Type": "application/json",
                                         "User-Agent": "noeari-webhooks/1", "Noeari-Event": row["event_type"],
                                         "Noeari-Event-Id": row["event_id"],
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
    wait = outbox.backoff(config["WEBHOOK_RETRY_SECONDS"], row["attempts"])
    execute("UPDATE webhook_delivery SET send_after = UTC_TIMESTAMP(6) + INTERVAL %s SECOND, claimed_until = NULL,"
            " last_status = %s, last_error = %s WHERE delivery_id = %s AND claimed_by = %s",
            (wait, status, error[:1000], row["delivery_id"], worker_id))
