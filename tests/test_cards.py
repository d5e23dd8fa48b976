"""Card payments against a real local Stripe server (localstripe): one checkout, one payment, orders placed
exactly once whichever of the browser's return, the webhook and the reconciliation job comes first."""
import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import threading
import time
import urllib.request
from decimal import Decimal

import pytest

import payments
from conftest import PASSWORD
from test_ledger import entries

GOOD, DECLINED, THREE_D_SECURE = "4242424242424242", "4000000000000341", "4000002500003155"


def card_token(base, number=GOOD):
    """A card token, made as Stripe.js makes it in the browser."""
    return stripe_call(base, "POST", "/v1/tokens", f"card[number]={number}&card[exp_month]=12&card[exp_year]=2030"
                                                   "&card[cvc]=123")["id"]


def stripe_call(base, method, path, body=None):
    request = urllib.request.Request(base + path, data=body.encode() if body else None, method=method, headers={
        "Authorization": "Basic " + base64.b64encode(b"sk_test_noeari:").decode(),
        "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def signed_event(intent, secret="whsec_noeari", event_type="payment_intent.succeeded", event_id=None):
    """A webhook as Stripe sends it: the event's JSON and its Stripe-Signature header."""
    now = int(time.time())
    payload = json.dumps({"id": event_id or f"evt_{intent['id']}_{event_type}", "object": "event", "type": event_type,
                          "created": now, "data": {"object": intent}})
    signature = hmac.new(secret.encode(), f"{now}.{payload}".encode(), hashlib.sha256).hexdigest()
    return payload, f"t={now},v1={signature}"


def pay_by_card(db, world):
    for producer in world.producers:
        db.execute("UPDATE fulfilment_option SET payment_method = 'card' WHERE option_id = %s",
                   (world.collection[producer],))


def card_checkout(client, auth, db, world):
    """Jane checks out potatoes from the farm and milk from the dairy, both paid by card: the checkout key."""
    pay_by_card(db, world)
    db.add_to_cart(world.customer, world.product, 3)
    db.add_to_cart(world.customer, world.other_product, 2)
    auth.login_customer()
    response = client.post("/checkout", data=world.choose())
    assert response.status_code == 302 and response.headers["Location"].endswith("/pay")
    return response.headers["Location"].split("/")[2]


def waiting(db):
    return db.rows("SELECT order_id, status, payment_status FROM orders WHERE card_payment_id IS NOT NULL"
                   " ORDER BY order_id")


def emails(db):
    return [row["dedupe_key"] for row in db.rows("SELECT dedupe_key FROM email_outbox ORDER BY email_id")]


def test_a_card_checkout_holds_its_orders_until_paid_then_places_them_once(client, auth, db, world, cards):
    stock_before = db.stock(world.product)
    key = card_checkout(client, auth, db, world)
    assert [row["status"] for row in waiting(db)] == ["awaiting_payment", "awaiting_payment"]
    payment = db.row("SELECT * FROM card_payment")
    assert payment["amount"] == Decimal("8.20") and payment["status"] == "awaiting"
    assert db.stock(world.product) == stock_before - 3, "stock is held"
    assert len(db.cart(world.customer)) == 2, "the cart keeps the lines until they are paid for"
    assert emails(db) == [] and db.value("SELECT COUNT(*) FROM ledger_entry WHERE order_id IN"
                                         " (SELECT order_id FROM orders WHERE card_payment_id IS NOT NULL)") == 0
    page = client.get(f"/checkout/{key}/pay").get_data(as_text=True)
    assert "Pay £8.20" in page and "card-element" in page
    response = client.post(f"/checkout/{key}/pay", data={"card_token": card_token(cards)})
    assert response.status_code == 302 and response.headers["Location"] == f"/checkout/{key}"
    assert [(row["status"], row["payment_status"]) for row in waiting(db)] == [("pending", "paid")] * 2
    assert not db.cart(world.customer)
    card_account = db.value("SELECT balance FROM ledger_account WHERE kind = 'card'")
    assert card_account == Decimal("-8.20"), "the card processor holds the checkout's total"
    for row in waiting(db):
        assert [kind for kind, _, _ in entries(db, row["order_id"])] == ["order", "payment"]
    order_ids = [row["order_id"] for row in waiting(db)]
    assert sorted(emails(db)) == sorted([f"checkout:{order_ids[0]}", f"order-new:{order_ids[0]}",
                                         f"order-new:{order_ids[1]}"])
    assert db.value("SELECT COUNT(*) FROM card_attempt") == 1
    intent = db.value("SELECT intent_id FROM card_payment")
    assert stripe_call(cards, "GET", f"/v1/payment_intents/{intent}")["amount"] == 820
    # A second submit of the paid checkout (a retry, another tab) charges nothing: it shows what was placed.
    again = client.post(f"/checkout/{key}/pay", data={"card_token": card_token(cards)})
    assert again.status_code == 302 and again.headers["Location"] == f"/checkout/{key}"
    assert db.value("SELECT COUNT(*) FROM card_attempt") == 1


def test_the_producer_sees_a_card_order_only_once_it_is_paid(client, auth, db, world, cards):
    key = card_checkout(client, auth, db, world)
    order_id = waiting(db)[0]["order_id"]
    auth.logout()
    auth.login_producer()
    assert client.get(f"/dashboard/orders/{order_id}").status_code == 404
    assert f"#{order_id}" not in client.get("/dashboard/orders").get_data(as_text=True)
    auth.logout()
    auth.login_customer()
    client.post(f"/checkout/{key}/pay", data={"card_token": card_token(cards)})
    auth.logout()
    auth.login_producer()
    assert client.get(f"/dashboard/orders/{order_id}").status_code == 200


def start_unsettled(app, db, world, cards, client, auth):
    """A checkout charged at Stripe whose server died before it recorded anything after the charge: the intent."""
    key = card_checkout(client, auth, db, world)
    with app.app_context():
        payment, attempt = payments.start_attempt(world.customer, key, card_token(cards))
        intent = payments.client().v1.payment_intents.create(params={
            "amount": 820, "currency": "gbp", "payment_method": stripe_call(
                cards, "GET", f"/v1/tokens/{attempt['card_token']}")["card"]["id"], "confirm": True,
            "metadata": {"noeari_payment": str(payment["payment_id"]), "noeari_attempt": str(attempt["attempt_id"]),
                         "noeari_checkout": key}})
    return key, stripe_call(cards, "GET", f"/v1/payment_intents/{intent.id}")


@pytest.mark.parametrize("order", ["webhook first", "return first", "webhook twice", "together"])
def test_the_return_and_the_webhook_place_the_orders_once_in_any_order(app, client, auth, db, world, cards, order):
    key, intent = start_unsettled(app, db, world, cards, client, auth)
    payload, signature = signed_event(intent)

    def webhook():
        response = app.test_client().post("/stripe/webhook", data=payload,
                                          headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
        assert response.status_code == 200
        return response.get_json()["outcome"]

    def back():
        assert client.post(f"/checkout/{key}/return").status_code == 302

    if order == "webhook first":
        assert webhook() == "settled"
        back()
    elif order == "return first":
        back()
        assert webhook() == "settled"
    elif order == "webhook twice":
        assert webhook() == "settled"
        assert webhook() == "seen before"
    else:
        threads = [threading.Thread(target=webhook), threading.Thread(target=back)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert [row["status"] for row in waiting(db)] == ["pending", "pending"]
    assert db.value("SELECT COUNT(*) FROM ledger_entry WHERE kind = 'payment'") == 2
    assert len([key for key in emails(db) if key.startswith("checkout:")]) == 1
    assert db.value("SELECT COUNT(*) FROM stripe_event") == 1


def test_the_reconciliation_job_places_a_checkout_charged_before_the_server_died(app, client, auth, db, world, cards):
    start_unsettled(app, db, world, cards, client, auth)
    with app.app_context():
        assert payments.release_expired(payments.utc_now() + datetime.timedelta(hours=1)) == []
    assert [row["status"] for row in waiting(db)] == ["pending", "pending"]
    assert db.value("SELECT status FROM card_payment") == "paid"


def test_a_declined_card_places_nothing_and_the_hold_then_lets_go(app, client, auth, db, world, cards):
    stock_before = db.stock(world.product)
    key = card_checkout(client, auth, db, world)
    response = client.post(f"/checkout/{key}/pay", data={"card_token": card_token(cards, DECLINED)})
    assert response.status_code == 402 and "Your card was declined" in response.get_data(as_text=True)
    assert [row["status"] for row in waiting(db)] == ["awaiting_payment"] * 2
    assert db.stock(world.product) == stock_before - 3 and len(db.cart(world.customer)) == 2
    assert db.value("SELECT status FROM card_attempt") == "failed"
    with app.app_context():
        assert payments.release_expired(payments.utc_now() + datetime.timedelta(minutes=5)) == [], "held 15 minutes"
        released = payments.release_expired(payments.utc_now() + datetime.timedelta(minutes=16))
    assert len(released) == 1
    assert [row["status"] for row in waiting(db)] == ["cancelled"] * 2
    assert db.stock(world.product) == stock_before and len(db.cart(world.customer)) == 2
    assert db.value("SELECT COUNT(*) FROM ledger_entry") == db.value(
        "SELECT COUNT(*) FROM ledger_entry WHERE order_id IN (%s, %s)", (world.order, world.other_order))
    late = client.post(f"/checkout/{key}/pay", data={"card_token": card_token(cards)})
    assert late.status_code == 402 and "check out again" in late.get_data(as_text=True)


def test_a_webhook_with_a_bad_signature_is_refused_and_changes_nothing(app, client, auth, db, world, cards):
    key, intent = start_unsettled(app, db, world, cards, client, auth)
    payload, _ = signed_event(intent)
    _, forged = signed_event(intent, secret="whsec_someone_else")
    with db.unchanged():
        for signature in (forged, "", "t=1,v1=00"):
            response = app.test_client().post("/stripe/webhook", data=payload, headers={"Stripe-Signature": signature})
            assert response.status_code == 400 and response.mimetype == "application/problem+json"


def test_an_event_for_an_unknown_intent_is_kept_and_harmless(app, db, world, cards):
    intent = {"id": "pi_unknown", "object": "payment_intent", "status": "succeeded", "metadata": {}}
    payload, signature = signed_event(intent)
    response = app.test_client().post("/stripe/webhook", data=payload, headers={"Stripe-Signature": signature})
    assert response.status_code == 200 and response.get_json()["outcome"] == "not ours"
    assert db.value("SELECT COUNT(*) FROM stripe_event") == 1


def test_without_a_key_cards_are_not_offered(client, auth, db, world):
    auth.login_producer()
    page = client.get(f"/dashboard/fulfilment/{world.collection[world.producer]}/edit").get_data(as_text=True)
    assert "By card" not in page
    pay_by_card(db, world)
    db.add_to_cart(world.customer, world.product, 1)
    auth.logout()
    auth.login_customer()
    with db.unchanged():
        response = client.post("/checkout", data=world.choose())
        assert response.status_code == 409 and "card payments are not available" in response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["anonymous", "other customer", "producer", "operator"])
def test_a_checkout_s_card_step_is_its_customer_s_own(client, auth, db, world, cards, operator, who):
    key = card_checkout(client, auth, db, world)
    auth.logout()
    {"anonymous": lambda: None, "other customer": lambda: auth.login_customer("tom@example.com"),
     "producer": auth.login_producer, "operator": auth.login_operator}[who]()
    with db.unchanged():
        for response in (client.get(f"/checkout/{key}/pay"),
                         client.post(f"/checkout/{key}/pay", data={"card_token": card_token(cards)}),
                         client.post(f"/checkout/{key}/return")):
            assert response.status_code == (404 if who == "other customer" else 302)


@pytest.mark.parametrize("token", ["", "card_123", "tok_<script>", "tok_" + "a" * 61])
def test_a_malformed_card_token_is_refused(client, auth, db, world, cards, token):
    key = card_checkout(client, auth, db, world)
    with db.unchanged():
        assert client.post(f"/checkout/{key}/pay", data={"card_token": token}).status_code == 400


def test_a_card_that_needs_its_bank_s_check_is_placed_after_it(client, auth, db, world, cards):
    key = card_checkout(client, auth, db, world)
    response = client.post(f"/checkout/{key}/pay", data={"card_token": card_token(cards, THREE_D_SECURE)})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-client-secret="pi_' in page
    assert [row["status"] for row in waiting(db)] == ["awaiting_payment"] * 2
    intent_id = db.value("SELECT intent_id FROM card_attempt")
    secret = page.split('data-client-secret="')[1].split('"')[0]
    # What Stripe.js does when the customer completes their bank's check.
    stripe_call(cards, "POST", f"/v1/payment_intents/{intent_id}/_authenticate?success=true",
                f"client_secret={secret}")
    assert client.post(f"/checkout/{key}/return").status_code == 302
    assert [row["status"] for row in waiting(db)] == ["pending"] * 2


# --- Refunds to the card ---------------------------------------------------------------

def paid_card_checkout(client, auth, db, world, cards):
    key = card_checkout(client, auth, db, world)
    assert client.post(f"/checkout/{key}/pay", data={"card_token": card_token(cards)}).status_code == 302
    auth.logout()
    return waiting(db)[0]["order_id"], db.value("SELECT intent_id FROM card_payment")


def stripe_refunds(cards, intent_id):
    return [(refund["amount"], refund["metadata"].get("noeari_refund"))
            for refund in stripe_call(cards, "GET", f"/v1/refunds?payment_intent={intent_id}")["data"]]


def test_a_shortage_on_a_card_paid_order_is_refunded_to_the_card_exactly_once(app, client, auth, db, world, cards):
    order_id, intent_id = paid_card_checkout(client, auth, db, world, cards)
    clients = [app.test_client() for _ in range(2)]
    for producer_client in clients:
        assert producer_client.post("/login/producer", data={"email": "farm@example.com",
                                                             "password": PASSWORD}).status_code == 302
    barrier, statuses = threading.Barrier(2), []

    def short(producer_client):
        barrier.wait()
        statuses.append(producer_client.post(f"/dashboard/orders/{order_id}/lines/{world.product}",
                                             data={"quantity": "1", "reason": "Blight"}).status_code)

    threads = [threading.Thread(target=short, args=(producer_client,)) for producer_client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses)[0] == 302
    assert entries(db, order_id)[-1] == ("refund", "Refunded to your card", {"card": Decimal("3.60"),
                                                                            "receivable": Decimal("-3.60")})
    refund = db.row("SELECT * FROM card_refund")
    assert (refund["amount"], refund["status"], db.value("SELECT COUNT(*) FROM card_refund")) == (
        Decimal("3.60"), "pending", 1)
    sent = []

    def send():
        with app.app_context():
            sent.extend(payments.send_refunds())

    workers = [threading.Thread(target=send) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sent == [refund["refund_id"]]
    assert stripe_refunds(cards, intent_id) == [(360, str(refund["refund_id"]))]
    with app.app_context():
        assert payments.send_refunds() == []
    assert db.value("SELECT status FROM card_refund") == "done"


def test_a_refund_stripe_made_before_the_worker_stopped_is_not_made_again(app, client, auth, db, world, cards):
    order_id, intent_id = paid_card_checkout(client, auth, db, world, cards)
    auth.login_customer()
    assert client.post(f"/orders/{order_id}/cancel").status_code == 302
    refund = db.row("SELECT * FROM card_refund")
    assert refund["amount"] == Decimal("5.40"), "a cancel refunds the whole order"
    stripe_call(cards, "POST", "/v1/refunds", f"payment_intent={intent_id}&amount=540"
                                              f"&metadata[noeari_refund]={refund['refund_id']}")
    with app.app_context():
        assert payments.send_refunds() == [refund["refund_id"]]
    assert stripe_refunds(cards, intent_id) == [(540, str(refund["refund_id"]))]


# --- Reconciliation and the operator's page -----------------------------------------

def test_reconciliation_finds_agreement_and_lists_a_disagreement(app, client, auth, db, world, cards, operator):
    order_id, intent_id = paid_card_checkout(client, auth, db, world, cards)
    payment_id = db.value("SELECT payment_id FROM card_payment")
    with app.app_context():
        assert payments.reconcile() == []
    check = db.row("SELECT * FROM card_check")
    assert (check["stripe_net"], check["ledger_net"], check["problem"]) == (Decimal("8.20"), Decimal("8.20"), "")
    # A refund owed but not yet sent is counted: still in agreement.
    auth.login_producer()
    client.post(f"/dashboard/orders/{order_id}/lines/{world.product}", data={"quantity": "2", "reason": "Blight"})
    auth.logout()
    with app.app_context():
        assert payments.check(payment_id) is False
    # Someone refunds £1.00 in Stripe's own dashboard: Stripe and the ledger now disagree.
    stripe_call(cards, "POST", "/v1/refunds", f"payment_intent={intent_id}&amount=100")
    with app.app_context():
        assert payments.check(payment_id) is True
    assert db.value("SELECT problem FROM card_check") == "Stripe holds £7.20 for it, the ledger £8.20."
    auth.login_operator()
    page = client.get("/admin/payments").get_data(as_text=True)
    assert "Disagreements (1)" in page and "Stripe holds £7.20 for it, the ledger £8.20." in page


def test_reconciliation_lists_a_payment_taken_for_orders_let_go(app, client, auth, db, world, cards):
    start_unsettled(app, db, world, cards, client, auth)
    payment_id = db.value("SELECT payment_id FROM card_payment")
    with app.app_context():
        assert payments.release(payment_id)  # as if let go before Stripe's answer could be seen
        assert payments.check(payment_id) is True
    assert db.value("SELECT problem FROM card_check") == ("Stripe took £8.20, but its orders were let go: "
                                                          "refund it at Stripe.")


@pytest.mark.parametrize("who", ["anonymous", "customer", "producer"])
def test_only_the_operator_sees_card_payments(client, auth, db, world, who):
    {"anonymous": lambda: None, "customer": auth.login_customer, "producer": auth.login_producer}[who]()
    response = client.get("/admin/payments")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login/operator")


# --- In a real browser, through the local server's own Stripe.js -----------------------------------

def fill_card(page, number):
    """Type a card into the card element (localstripe's stand-in for Stripe's)."""
    for field, value in (("number", number), ("exp_month", "12"), ("exp_year", "30"), ("cvc", "123"),
                         ("postal_code", "BS1 4DJ")):
        page.locator(f'#card-element input[placeholder="{field}"]').fill(value)


def looks_right(page, width, shot=None):
    """No wider than the screen and no accessibility violation (the card element's own inputs are Stripe's,
    in an iframe of theirs in production, so axe leaves them out); a screenshot when asked for."""
    from axe_playwright_python.sync_playwright import Axe
    from test_pages import AXE_OPTIONS
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    results = Axe().run(page, context={"exclude": [["#card-element"]]}, options=AXE_OPTIONS)
    assert [violation["id"] for violation in results.response["violations"]] == []
    folder = os.environ.get("NOEARI_SCREENSHOTS")
    if folder and shot:
        page.screenshot(path=os.path.join(folder, f"{shot}-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", [360, 1280])
def test_a_customer_pays_by_card_in_the_browser_after_a_declined_card(cards, live_server, browser, db, world, width):
    pay_by_card(db, world)
    db.add_to_cart(world.customer, world.product, 3)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    try:
        page.goto(f"{live_server}/login/customer")
        page.get_by_label("Email").fill("jane@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{live_server}/cart")
        page.locator(f'input[name="when_{world.producer}"][value="{world.collection[world.producer]}@arranged"]').check()
        page.get_by_role("button", name="Place order").click()
        page.wait_for_url(re.compile(r".*/checkout/[\w-]+/pay$"))
        page.locator("#card-element input").first.wait_for()
        looks_right(page, width, "card-step")
        fill_card(page, DECLINED)
        page.get_by_role("button", name="Pay £5.40").click()
        page.get_by_text("Your card was declined.").first.wait_for()
        looks_right(page, width, "card-declined")
        assert db.value("SELECT status FROM orders WHERE card_payment_id IS NOT NULL") == "awaiting_payment"
        page.locator("#card-element input").first.wait_for()
        fill_card(page, GOOD)
        page.get_by_role("button", name="Pay £5.40").click()
        page.wait_for_url(re.compile(r".*/checkout/[\w-]+$"))
        assert "placed" in page.locator("h1").inner_text()
        looks_right(page, width, "card-paid")
        assert db.value("SELECT status FROM orders WHERE card_payment_id IS NOT NULL") == "pending"
        assert db.value("SELECT COUNT(*) FROM card_attempt") == 2
        assert [error for error in errors if "Content Security Policy" in error] == []
    finally:
        context.close()


def test_the_operator_sees_a_disagreement_on_the_payments_page_in_the_browser(app, cards, live_server, browser, client,
                                                                               auth, db, world, operator):
    app.config["WTF_CSRF_ENABLED"] = False  # the test client's setup posts no tokens; the browser below does
    _, intent_id = paid_card_checkout(client, auth, db, world, cards)
    app.config["WTF_CSRF_ENABLED"] = True
    stripe_call(cards, "POST", "/v1/refunds", f"payment_intent={intent_id}&amount=100")
    with app.app_context():
        assert payments.reconcile() == [db.value("SELECT payment_id FROM card_payment")]
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{live_server}/login/operator")
        page.get_by_label("Email").fill("op@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        for width in (360, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server}/admin/payments")
            assert "Stripe holds £7.20 for it, the ledger £8.20." in page.content()
            looks_right(page, width, "admin-payments")
    finally:
        context.close()


# --- Weighed goods: authorized at the most they can cost, captured at what they weigh ---------------

def weighed_card_checkout(client, auth, db, world, cards):
    """Jane pays by card for a chicken (£9.00/kg, about 1.8 kg, 10% tolerance): its order's id."""
    pay_by_card(db, world)
    bird = db.add_product(world.producer, "Chicken", "9.00", quantity=8, unit="bird", sold_by="weighed",
                          estimated_weight="1.8")
    db.add_to_cart(world.customer, bird, 1)
    auth.login_customer()
    response = client.post("/checkout", data=world.choose())
    key = response.headers["Location"].split("/")[2]
    assert client.post(f"/checkout/{key}/pay", data={"card_token": card_token(cards)}).status_code == 302
    auth.logout()
    return waiting(db)[0]["order_id"], bird


def test_a_weighed_order_is_authorized_at_most_and_captured_at_its_weight(app, client, auth, db, world, cards):
    order_id, bird = weighed_card_checkout(client, auth, db, world, cards)
    payment = db.row("SELECT * FROM card_payment")
    assert (payment["amount"], payment["capture_method"], payment["status"]) == (Decimal("17.82"), "manual",
                                                                                 "authorized")
    intent = stripe_call(cards, "GET", f"/v1/payment_intents/{payment['intent_id']}")
    assert (intent["amount"], intent["status"]) == (1782, "requires_capture"), "1.98 kg at £9.00"
    assert waiting(db)[0]["status"] == "pending" and waiting(db)[0]["payment_status"] == "unpaid"
    with app.app_context():
        assert payments.capture_ready() == [], "not weighed yet"
    auth.login_producer()
    assert client.post(f"/dashboard/orders/{order_id}/weights", data={f"weight-{order_id}-{bird}": "1.93"}
                       ).status_code == 302
    with app.app_context():
        assert payments.capture_ready() == [payment["payment_id"]]
        assert payments.capture_ready() == []
    intent = stripe_call(cards, "GET", f"/v1/payment_intents/{payment['intent_id']}")
    assert intent["status"] == "succeeded" and intent["latest_charge"]["amount_refunded"] == 1782 - 1737
    assert db.row("SELECT status, captured_amount FROM card_payment") == {"status": "paid",
                                                                          "captured_amount": Decimal("17.37")}
    assert entries(db, order_id)[-1][2] == {"card": Decimal("-17.37"), "receivable": Decimal("17.37")}
    assert waiting(db)[0]["payment_status"] == "paid"


def test_cancelling_a_weighed_order_releases_its_authorization(app, client, auth, db, world, cards):
    order_id, _ = weighed_card_checkout(client, auth, db, world, cards)
    intent_id = db.value("SELECT intent_id FROM card_payment")
    auth.login_customer()
    assert client.post(f"/orders/{order_id}/cancel").status_code == 302
    with app.app_context():
        assert len(payments.capture_ready()) == 1
    assert stripe_call(cards, "GET", f"/v1/payment_intents/{intent_id}")["status"] == "canceled"
    assert db.value("SELECT status FROM card_payment") == "released"
    assert db.value("SELECT COUNT(*) FROM card_refund") == 0, "nothing was taken, so nothing is refunded"


def test_an_authorization_about_to_lapse_is_captured_at_what_is_known(app, client, auth, db, world, cards):
    order_id, _ = weighed_card_checkout(client, auth, db, world, cards)
    with app.app_context():
        assert payments.capture_ready(payments.utc_now() + datetime.timedelta(days=7)) == [
            db.value("SELECT payment_id FROM card_payment")]
    assert db.value("SELECT captured_amount FROM card_payment") == Decimal("16.20"), "the estimate, 1.8 kg"


def test_webhooks_hear_of_a_card_order_once_it_is_paid_and_of_its_refund(app, client, auth, db, world, cards,
                                                                          operator):
    db.execute("INSERT INTO webhook_endpoint (role, account_id, url, events, secret) VALUES ('operator', %s,"
               " 'https://93.184.215.14/hooks', 'order.placed,order.changed,payment.succeeded,payment.refunded',"
               " 'whsec_test_secret_0123456789')", (operator,))
    key = card_checkout(client, auth, db, world)
    assert db.value("SELECT COUNT(*) FROM webhook_event") == 0, "an order awaiting its payment is not placed yet"
    assert client.post(f"/checkout/{key}/pay", data={"card_token": card_token(cards)}).status_code == 302
    events = [(row["event_type"], json.loads(row["payload"])["data"]) for row in db.rows(
        "SELECT event_type, payload FROM webhook_event ORDER BY created_at, event_type")]
    placed = sorted(data["id"] for kind, data in events if kind == "order.placed")
    paid = sorted((data["order"]["id"], data["amount"]["amount"]) for kind, data in events
                  if kind == "payment.succeeded")
    assert placed == [order["order_id"] for order in waiting(db)]
    assert paid == [(placed[0], "5.40"), (placed[1], "2.80")]
    auth.login_producer()
    assert client.post(f"/dashboard/orders/{placed[0]}/lines/{world.product}",
                       data={"quantity": "1", "reason": "Blight"}).status_code == 302
    with app.app_context():
        payments.send_refunds()
    refunded = [json.loads(row["payload"])["data"] for row in db.rows(
        "SELECT payload FROM webhook_event WHERE event_type = 'payment.refunded'")]
    assert [(data["order"]["id"], data["amount"]["amount"]) for data in refunded] == [(placed[0], "3.60")]
    assert db.value("SELECT COUNT(*) FROM webhook_event WHERE event_type = 'order.changed'") == 1
    assert db.value("SELECT COUNT(*) FROM webhook_delivery") == db.value("SELECT COUNT(*) FROM webhook_event")
