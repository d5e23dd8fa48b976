"""Card payments through Stripe (PaymentIntents), where the order, the ledger and Stripe never disagree.

A checkout's card-paid orders are written, with one card_payment, in the checkout's transaction, as
awaiting_payment: their stock and capacity are held and their lines stay in the cart. Each card the customer
submits is one card_attempt, committed before Stripe is called and named in the intent's metadata, so an
intent is always traceable to its attempt. The payment settles exactly once, under its row lock, by whichever
comes first: the browser's return, the webhook, or the reconciliation job. A payment not made within
CARD_HOLD_MINUTES is released: its orders are cancelled (stock and capacity back) and the cart is untouched.

Request-free: the customer's id comes in as an argument.
"""
import datetime
from decimal import Decimal

import stripe
from flask import current_app

import fulfilment
import ledger
import orders
from db import execute, query, transactional
from ledger import Leg

STATUS_LABEL = "Awaiting payment"


class PaymentRefused(Exception):
    """The card was not charged; problem says why, in words for the customer."""

    def __init__(self, problem):
        super().__init__(problem)
        self.problem = problem


def enabled():
    """Whether cards are taken at all: only with a Stripe secret key set."""
    return bool(current_app.config["STRIPE_SECRET_KEY"])


def client():
    """The Stripe client for this app's settings (a local Stripe server in tests)."""
    config = current_app.config
    return stripe.StripeClient(config["STRIPE_SECRET_KEY"], base_addresses={"api": config["STRIPE_API_BASE"]},
                               max_network_retries=2)


def plain(stripe_object):
    """A Stripe object (or None) as a plain dict."""
    return stripe_object.to_dict() if stripe_object else {}


def pence(amount):
    return int((Decimal(amount) * 100).to_integral_value())


# --- Opening a payment, in the checkout's transaction ---------------------------------

def open_payment(customer_id, key, amount, capture_method="automatic"):
    """The card payment of a checkout's card-paid orders, held for CARD_HOLD_MINUTES; its id. One for weighed
    goods (capture_method 'manual') is authorized for amount, the most they can cost, and captured later."""
    return execute("INSERT INTO card_payment (customer_id, checkout_key, amount, capture_method, hold_until)"
                   " VALUES (%s, %s, %s, %s, UTC_TIMESTAMP() + INTERVAL %s MINUTE)",
                   (customer_id, key, amount, capture_method, int(current_app.config["CARD_HOLD_MINUTES"]))).lastrowid


def waiting_orders(payment_id):
    """The ids of a payment's orders (none for no payment)."""
    if payment_id is None:
        return []
    return [row["order_id"] for row in query("SELECT order_id FROM orders WHERE card_payment_id = %s",
                                             (payment_id,))]


def checkout_payment(customer_id, key):
    """A checkout's card payment with its orders, or None."""
    payment = query("SELECT * FROM card_payment WHERE customer_id = %s AND checkout_key = %s",
                    (customer_id, key), one=True)
    if payment:
        payment["orders"] = query("SELECT o.order_id, o.status, o.goods_total + o.fee AS total, p.business_name"
                                  " FROM orders o JOIN producer p ON p.producer_id = o.producer_id"
                                  " WHERE o.card_payment_id = %s ORDER BY o.order_id", (payment["payment_id"],))
    return payment


# --- Paying: one attempt per card submitted -------------------------------------------------

@transactional
def start_attempt(customer_id, key, card_token):
    """Record the attempt to pay a checkout's payment with a card token before Stripe is called: the same
    token submitted twice is the same attempt. Returns (payment, attempt); PaymentRefused when the payment is
    settled already or released; None when there is no such payment."""
    payment = query("SELECT * FROM card_payment WHERE customer_id = %s AND checkout_key = %s FOR UPDATE",
                    (customer_id, key), one=True)
    if payment is None:
        return None
    if payment["status"] in ("paid", "authorized"):
        raise PaymentRefused("This checkout is paid already: nothing more was charged.")
    if payment["status"] == "released":
        raise PaymentRefused("This checkout waited too long for its payment and was let go: your cart still has "
                             "everything in it, so check out again.")
    execute("INSERT IGNORE INTO card_attempt (payment_id, card_token) VALUES (%s, %s)",
            (payment["payment_id"], card_token))
    attempt = query("SELECT * FROM card_attempt WHERE payment_id = %s AND card_token = %s",
                    (payment["payment_id"], card_token), one=True)
    return payment, attempt


def charge(customer_id, key, card_token):
    """Charge a checkout's payment to a card (a Stripe.js token). Returns the attempt's intent as Stripe has
    it: succeeded (the orders are placed, once), or requires_action (3-D Secure: the browser confirms it with
    the client secret, then comes back). PaymentRefused, with the reason, when the card is declined."""
    started = start_attempt(customer_id, key, card_token)
    if started is None:
        return None
    payment, attempt = started
    if attempt["intent_id"]:  # this very card was submitted before: its intent, never a second charge
        intent = client().v1.payment_intents.retrieve(attempt["intent_id"])
    else:
        try:
            token = client().v1.tokens.retrieve(card_token)
            intent = client().v1.payment_intents.create(params={
                "amount": pence(payment["amount"]), "currency": current_app.config["CURRENCY"],
                "payment_method": token.card.id, "confirm": True, "capture_method": payment["capture_method"],
                "metadata": {"noeari_payment": str(payment["payment_id"]),
                             "noeari_attempt": str(attempt["attempt_id"]), "noeari_checkout": key}},
                options={"idempotency_key": f"noeari-attempt-{attempt['attempt_id']}"})
        except stripe.CardError as declined:
            record_attempt(attempt["attempt_id"], None, "failed", declined.user_message or "Your card was declined.")
            raise PaymentRefused(f"{declined.user_message or 'Your card was declined.'} Nothing was charged: "
                                 "try another card.") from None
        except stripe.InvalidRequestError:
            record_attempt(attempt["attempt_id"], None, "failed", "The card details could not be used.")
            raise PaymentRefused("Those card details could not be used. Nothing was charged: try again.") from None
    return settle_intent(intent)


@transactional
def record_attempt(attempt_id, intent_id, status, error=""):
    execute("UPDATE card_attempt SET intent_id = COALESCE(%s, intent_id), status = %s, error = %s"
            " WHERE attempt_id = %s", (intent_id, status, error[:300], attempt_id))


def settle_intent(intent):
    """Bring the database in line with an intent as Stripe has it: a succeeded one places its payment's orders
    (once); one needing authentication is noted; a failed one is recorded. Returns the intent."""
    metadata = plain(intent.metadata)
    attempt_id = int(metadata.get("noeari_attempt") or 0)
    status = {"succeeded": "succeeded", "requires_capture": "succeeded",
              "requires_action": "requires_action"}.get(intent.status, "failed")
    error = ""
    if status == "failed" and intent.last_payment_error:
        error = plain(intent.last_payment_error).get("message") or "The payment failed."
    if attempt_id:
        record_attempt(attempt_id, intent.id, status, error)
    if status == "succeeded":
        place_paid(int(metadata["noeari_payment"]), intent.id)
    return intent


@transactional
def place_paid(payment_id, intent_id):
    """The payment went through: place its orders, take their lines out of the cart, post each order's value
    and, when the money is taken now, its payment by card; send the checkout's emails; all once. Weighed goods
    are only authorized: their payment is posted when captured (capture_ready). A payment already placed, or
    released (its orders cancelled), changes nothing here: the reconciliation job lists a released one that was
    paid. Returns whether this call placed them."""
    payment = query("SELECT * FROM card_payment WHERE payment_id = %s FOR UPDATE", (payment_id,), one=True)
    if payment is None or payment["status"] != "awaiting":
        return False
    order_ids = [row["order_id"] for row in query(
        "SELECT order_id FROM orders WHERE card_payment_id = %s AND status = 'awaiting_payment' ORDER BY order_id"
        " FOR UPDATE", (payment_id,))]
    taken = payment["capture_method"] == "automatic"
    execute("UPDATE card_payment SET status = %s, intent_id = %s, settled_at = UTC_TIMESTAMP(),"
            " captured_amount = IF(%s, amount, NULL) WHERE payment_id = %s",
            ("paid" if taken else "authorized", intent_id, taken, payment_id))
    customer_id = payment["customer_id"]
    for order_id in order_ids:
        execute("UPDATE orders SET status = 'pending', placed_at = UTC_TIMESTAMP() WHERE order_id = %s", (order_id,))
        execute("INSERT INTO order_status_history (order_id, from_status, to_status, changed_by_role, changed_by_id,"
                " note) VALUES (%s, 'awaiting_payment', 'pending', 'customer', %s, %s)",
                (order_id, customer_id, "Paid by card" if taken else "Authorized on the card"))
        ledger.sync_order(order_id, "Order placed", ("customer", customer_id))
        if taken:
            post_card_payment(order_id, customer_id, intent_id)
    execute("DELETE ci FROM cart_item ci JOIN order_item oi ON oi.product_id = ci.product_id"
            " JOIN orders o ON o.order_id = oi.order_id WHERE ci.customer_id = %s AND o.card_payment_id = %s",
            (customer_id, payment_id))
    if order_ids:
        orders.announce_checkout(order_ids)
    return True


def post_card_payment(order_id, customer_id, intent_id):
    """What the order owes now is paid by card: the card processor holds it for the co-op."""
    due = ledger.order_due(order_id, customer_id)
    ledger.post("payment", [Leg("card", 0, -due), Leg("receivable", customer_id, due)], order_id,
                f"Paid by card ({intent_id})", ("customer", customer_id))
    execute("UPDATE orders SET payment_status = 'paid', paid_at = UTC_TIMESTAMP() WHERE order_id = %s", (order_id,))
    orders.order_event("payment.succeeded", order_id, f"{order_id}:{intent_id}", due)


# --- Capturing weighed goods ------------------------------------------------------------

CAPTURE_WITHIN_DAYS = 6  # card authorizations lapse after about 7 days


def capture_ready(now=None):
    """Authorized payments whose orders are all final (every weighed line weighed, or the order cancelled), or
    whose authorization is about to lapse: each is captured for what its orders now cost, or released when
    nothing is left. Returns the ids settled."""
    rows = query(
        "SELECT p.payment_id FROM card_payment p WHERE p.status = 'authorized' AND (p.settled_at < %s OR NOT EXISTS"
        " (SELECT 1 FROM orders o JOIN order_item oi ON oi.order_id = o.order_id WHERE o.card_payment_id = p.payment_id"
        "  AND o.status <> 'cancelled' AND oi.sold_by = 'weighed' AND oi.weight IS NULL)) ORDER BY p.payment_id",
        ((now or utc_now()) - datetime.timedelta(days=CAPTURE_WITHIN_DAYS),))
    return [row["payment_id"] for row in rows if capture(row["payment_id"])]


@transactional
def capture(payment_id):
    """Capture one authorized payment for what its live orders owe now (or cancel the authorization when they
    owe nothing), and post each order's payment; the row stays locked while Stripe is asked, and an intent
    captured before a crash is not captured again. Whether this call settled it."""
    payment = query("SELECT * FROM card_payment WHERE payment_id = %s AND status = 'authorized' FOR UPDATE SKIP LOCKED",
                    (payment_id,), one=True)
    if payment is None:
        return False
    live = query("SELECT order_id FROM orders WHERE card_payment_id = %s AND status <> 'cancelled' ORDER BY order_id",
                 (payment_id,))
    owed = sum((ledger.order_due(row["order_id"], payment["customer_id"]) for row in live), Decimal("0.00"))
    intent = client().v1.payment_intents.retrieve(payment["intent_id"])
    if owed <= 0:
        if intent.status == "requires_capture":
            client().v1.payment_intents.cancel(intent.id)
        execute("UPDATE card_payment SET status = 'released', captured_amount = 0 WHERE payment_id = %s", (payment_id,))
        return True
    if intent.status == "requires_capture":
        intent = client().v1.payment_intents.capture(intent.id, params={"amount_to_capture": pence(owed)})
    for row in live:
        post_card_payment(row["order_id"], payment["customer_id"], intent.id)
    execute("UPDATE card_payment SET status = 'paid', captured_amount = %s WHERE payment_id = %s", (owed, payment_id))
    return True


def confirm_return(customer_id, key):
    """The browser is back from Stripe.js (after 3-D Secure): settle from the payment's intents as Stripe has
    them now. Returns the payment, or None when there is none."""
    payment = checkout_payment(customer_id, key)
    if payment is None:
        return None
    for intent in stripe_intents(payment):
        settle_intent(intent)
    return checkout_payment(customer_id, key)


def stripe_intents(payment):
    """The intents Stripe holds for a payment's attempts. An attempt whose intent was made but never recorded
    (the server stopped between Stripe's answer and the commit) is found by the attempt and checkout named in
    its intent's metadata, among the intents made since the payment was opened."""
    attempts = query("SELECT attempt_id, intent_id FROM card_attempt WHERE payment_id = %s", (payment["payment_id"],))
    intents = [client().v1.payment_intents.retrieve(row["intent_id"]) for row in attempts if row["intent_id"]]
    lost = {str(row["attempt_id"]) for row in attempts if not row["intent_id"]}
    if lost:
        since = int(payment["created_at"].replace(tzinfo=datetime.UTC).timestamp()) - 3600
        for intent in client().v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
            if intent.created < since:
                break
            metadata = plain(intent.metadata)
            if metadata.get("noeari_attempt") in lost and metadata.get("noeari_checkout") == payment["checkout_key"]:
                intents.append(intent)
    return intents


# --- Refunds to cards -----------------------------------------------------------------

def send_refunds(limit=50):
    """Send the refunds owed to cards to Stripe, each once; the ids sent."""
    return [row["refund_id"] for row in query("SELECT refund_id FROM card_refund WHERE status = 'pending'"
                                              " ORDER BY refund_id LIMIT %s", (limit,))
            if send_refund(row["refund_id"])]


@transactional
def send_refund(refund_id):
    """One refund to Stripe, its row locked while it is sent (another worker skips it). A refund Stripe has
    already (the worker stopped before recording it) is found by the id in its metadata, never made twice."""
    refund = query("SELECT r.*, p.intent_id FROM card_refund r JOIN card_payment p ON p.payment_id = r.payment_id"
                   " WHERE r.refund_id = %s AND r.status = 'pending' FOR UPDATE SKIP LOCKED", (refund_id,), one=True)
    if refund is None:
        return False
    made = [found for found in client().v1.refunds.list(params={"payment_intent": refund["intent_id"]}).data
            if plain(found.metadata).get("noeari_refund") == str(refund_id)]
    if not made:
        made = [client().v1.refunds.create(params={
            "payment_intent": refund["intent_id"], "amount": pence(refund["amount"]),
            "metadata": {"noeari_refund": str(refund_id)}}, options={"idempotency_key": f"noeari-refund-{refund_id}"})]
    execute("UPDATE card_refund SET status = 'done', stripe_refund_id = %s, done_at = UTC_TIMESTAMP()"
            " WHERE refund_id = %s", (made[0].id, refund_id))
    orders.order_event("payment.refunded", refund["order_id"], refund_id, refund["amount"])
    return True


# --- Reconciliation ----------------------------------------------------------------------

RECONCILE_DAYS = 14
RECHECK_MINUTES = 10


def reconcile(limit=20):
    """Compare the card payments of the last RECONCILE_DAYS not checked in RECHECK_MINUTES with Stripe and the
    ledger, and keep what was found; the ids with a problem."""
    due = query("SELECT p.payment_id FROM card_payment p LEFT JOIN card_check c ON c.payment_id = p.payment_id"
                " WHERE p.status <> 'awaiting' AND p.created_at >= UTC_TIMESTAMP() - INTERVAL %s DAY"
                " AND (c.checked_at IS NULL OR c.checked_at < UTC_TIMESTAMP() - INTERVAL %s MINUTE)"
                " ORDER BY c.checked_at IS NOT NULL, c.checked_at, p.payment_id LIMIT %s",
                (RECONCILE_DAYS, RECHECK_MINUTES, limit))
    return [row["payment_id"] for row in due if check(row["payment_id"])]


def stripe_net(intent):
    """What Stripe holds for an intent: captured less refunded, in pounds."""
    if intent.status not in ("succeeded", "requires_capture") or not intent.latest_charge:
        return Decimal("0.00")
    charge = intent.latest_charge
    if isinstance(charge, str):
        charge = client().v1.charges.retrieve(charge)
    return Decimal((charge.amount if charge.captured else 0) - (charge.amount_refunded or 0)) / 100


def ledger_net(payment_id):
    """What the ledger says the card processor holds for a payment's orders, counting refunds not yet sent."""
    row = query("SELECT COALESCE(-SUM(l.amount), 0) AS held FROM ledger_leg l"
                " JOIN ledger_account a ON a.account_id = l.account_id AND a.kind = 'card'"
                " JOIN ledger_entry e ON e.entry_id = l.entry_id JOIN orders o ON o.order_id = e.order_id"
                " WHERE o.card_payment_id = %s", (payment_id,), one=True)
    pending = query("SELECT COALESCE(SUM(amount), 0) AS owed FROM card_refund WHERE payment_id = %s"
                    " AND status = 'pending'", (payment_id,), one=True)
    return row["held"] + pending["owed"]


def check(payment_id):
    """Compare one payment with Stripe and the ledger and keep the finding; whether there is a problem."""
    payment = query("SELECT * FROM card_payment WHERE payment_id = %s", (payment_id,), one=True)
    intents = stripe_intents(payment)
    charged = [intent for intent in intents if intent.status in ("succeeded", "requires_capture")]
    at_stripe = sum((stripe_net(intent) for intent in charged), Decimal("0.00"))
    in_ledger = ledger_net(payment_id)
    money = fulfilment.format_money
    if payment["status"] == "paid" and not charged:
        problem = "Placed as paid, but Stripe has no successful payment for it."
    elif payment["status"] == "released" and charged:
        problem = f"Stripe took {money(at_stripe)}, but its orders were let go: refund it at Stripe."
    elif len(charged) > 1:
        problem = f"Stripe took {len(charged)} payments for one checkout: refund all but one."
    elif at_stripe != in_ledger:
        problem = f"Stripe holds {money(at_stripe)} for it, the ledger {money(in_ledger)}."
    else:
        problem = ""
    keep_check(payment_id, charged[0].status if charged else (intents[-1].status if intents else "none"),
               at_stripe, in_ledger, problem)
    return bool(problem)


@transactional
def keep_check(payment_id, status, at_stripe, in_ledger, problem):
    execute("INSERT INTO card_check (payment_id, stripe_status, stripe_net, ledger_net, problem)"
            " VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE checked_at = UTC_TIMESTAMP(),"
            " stripe_status = VALUES(stripe_status), stripe_net = VALUES(stripe_net),"
            " ledger_net = VALUES(ledger_net), problem = VALUES(problem)",
            (payment_id, status[:30], at_stripe, in_ledger, problem[:300]))


def recent(limit=50):
    """The newest card payments with their customer and last check, problems first."""
    return query("SELECT p.payment_id, p.amount, p.status, p.intent_id, p.created_at, c.first_name, c.email,"
                 " k.checked_at, k.stripe_status, k.stripe_net, k.ledger_net, COALESCE(k.problem, '') AS problem"
                 " FROM card_payment p JOIN customer c ON c.customer_id = p.customer_id"
                 " LEFT JOIN card_check k ON k.payment_id = p.payment_id"
                 " ORDER BY COALESCE(k.problem, '') = '', p.payment_id DESC LIMIT %s", (limit,))


# --- Webhooks ---------------------------------------------------------------------------

class BadSignature(Exception):
    """A webhook whose signature does not verify: nothing was recorded."""


def receive_event(payload, signature):
    """Verify a webhook with STRIPE_WEBHOOK_SECRET, keep the event by its id, and act on it once: a succeeded
    (or authorized) intent places its payment's orders. Events for unknown or settled intents are kept and
    do nothing. Returns the outcome in words."""
    try:
        event = stripe.Webhook.construct_event(payload, signature, current_app.config["STRIPE_WEBHOOK_SECRET"])
    except (ValueError, stripe.SignatureVerificationError):
        raise BadSignature() from None
    intent = event.data.object if event.type.startswith("payment_intent.") else None
    if not record_event(event.id, event.type, intent.id if intent else None):
        return "seen before"
    if intent is not None and event.type in ("payment_intent.succeeded", "payment_intent.amount_capturable_updated"):
        if "noeari_payment" not in plain(intent.metadata):
            return "not ours"
        settle_intent(client().v1.payment_intents.retrieve(intent.id))
        return "settled"
    return "recorded"


@transactional
def record_event(event_id, event_type, intent_id):
    """Keep an event by its id; False when it was kept before (a repeat delivery)."""
    return execute("INSERT IGNORE INTO stripe_event (event_id, event_type, intent_id) VALUES (%s, %s, %s)",
                   (event_id[:64], event_type[:64], intent_id)).rowcount == 1


# --- Letting go of unpaid checkouts, and reconciliation --------------------------------

def release_expired(now=None):
    """Payments past their hold: each is first checked with Stripe (a payment that went through is placed,
    not released); the rest have their open intents cancelled and their orders cancelled, stock and capacity
    back. Returns the ids released."""
    released = []
    for payment in query("SELECT payment_id FROM card_payment WHERE status = 'awaiting' AND hold_until <= %s"
                         " ORDER BY payment_id", (now or utc_now(),)):
        if not paid_at_stripe(payment["payment_id"]):
            if release(payment["payment_id"]):
                released.append(payment["payment_id"])
    return released


def utc_now():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def paid_at_stripe(payment_id):
    """Settle a payment from its intents as Stripe has them, cancelling those still open; whether one was paid."""
    payment = query("SELECT * FROM card_payment WHERE payment_id = %s", (payment_id,), one=True)
    paid = False
    for intent in stripe_intents(payment):
        if intent.status in ("requires_payment_method", "requires_confirmation", "requires_action"):
            client().v1.payment_intents.cancel(intent.id)
            continue
        settle_intent(intent)
        paid = paid or intent.status in ("succeeded", "requires_capture")
    return paid


@transactional
def release(payment_id):
    """Cancel an unpaid payment's orders, putting back their stock and capacity; whether this call did."""
    payment = query("SELECT status FROM card_payment WHERE payment_id = %s FOR UPDATE", (payment_id,), one=True)
    if payment is None or payment["status"] != "awaiting":
        return False
    execute("UPDATE card_payment SET status = 'released', settled_at = UTC_TIMESTAMP() WHERE payment_id = %s",
            (payment_id,))
    for order in query("SELECT order_id, slot_id, fulfilment_date FROM orders WHERE card_payment_id = %s"
                       " AND status = 'awaiting_payment' FOR UPDATE", (payment_id,)):
        orders.release_order(order)
    return True
