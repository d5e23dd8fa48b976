"""Webhooks: endpoints registered by producers and the operator, each event written in the transaction of its
change, delivered by the real worker to a real HTTP server, signed, retried, once; and never to the server's
own network unless a setting allows it."""
import hashlib
import hmac
import json
import socket

import pytest

import orders
import webhooks
from conftest import round_trips, run_worker, workers_at_once
from db import transactional
from test_api import bearer, is_problem, token_for


def genuine(secret, received):
    """Whether a delivery's Noeari-Signature is right for its body under secret."""
    parts = dict(item.split("=", 1) for item in received["headers"]["Noeari-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + received["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def endpoint(db, role, account_id, url, events="order.placed", secret="whsec_test_secret_0123456789"):
    """An endpoint written straight to the database (as if registered when private addresses were allowed)."""
    return db.execute("INSERT INTO webhook_endpoint (role, account_id, url, events, secret) VALUES (%s, %s, %s, %s, %s)",
                      (role, account_id, url, events, secret))


def cancelled_event(app, order_id, key):
    """An order.cancelled event for order_id, written in a transaction of its own; its id, or None."""
    with app.app_context():
        return transactional(lambda: orders.order_event("order.cancelled", order_id, key))()


@pytest.fixture
def private_allowed(app):
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_SECONDS=0)
    return app


def check_out(client, auth, world):
    auth.login_customer()
    response = client.post("/checkout", data=world.choose())
    assert response.status_code == 302, response.get_data(as_text=True)


def test_an_endpoint_that_fails_twice_gets_the_event_on_the_third_try_once_and_signed(
        client, auth, db, world, private_allowed, receiver):
    auth.login_producer()
    response = client.post("/dashboard/webhooks", data={"url": receiver.url, "events": ["order.placed"]})
    assert response.status_code == 302
    secret = db.value("SELECT secret FROM webhook_endpoint")
    assert secret.startswith("whsec_") and len(secret) > 40
    db.add_to_cart(world.customer, world.product, 3)
    check_out(client, auth, world)
    order_id = db.value("SELECT MAX(order_id) FROM orders WHERE producer_id = %s", (world.producer,))
    event = db.row("SELECT event_id, event_type, payload FROM webhook_event")
    assert event["event_type"] == "order.placed" and db.value("SELECT COUNT(*) FROM webhook_delivery") == 1
    receiver.script = [500, 503]
    run_worker(private_allowed)
    assert len(receiver.received) == 3, "two failures, then the third try"
    assert all(got["body"] == receiver.received[0]["body"] for got in receiver.received)
    assert {got["headers"]["Noeari-Event-Id"] for got in receiver.received} == {event["event_id"]}
    assert all(genuine(secret, got) for got in receiver.received)
    assert not genuine("whsec_another_secret_012345678", receiver.received[2])
    body = json.loads(receiver.received[2]["body"])
    assert body["type"] == "order.placed" and body["id"] == event["event_id"]
    assert body["data"]["id"] == order_id and body["data"]["total"]["amount"] == "5.40"
    assert body["data"]["lines"][0]["quantity"] == "3"
    delivery = db.row("SELECT attempts, delivered_at, failed_at, last_status FROM webhook_delivery")
    assert delivery["attempts"] == 3 and delivery["delivered_at"] and not delivery["failed_at"]
    run_worker(private_allowed)
    assert len(receiver.received) == 3, "delivered once: never again"
    auth.login_producer()
    page = client.get("/dashboard/webhooks").get_data(as_text=True)
    assert receiver.url in page and "Delivered" in page and secret in page
    assert round_trips(client, "/dashboard/webhooks") == 3, "the user, the endpoints, their last deliveries"


def test_retries_wait_longer_each_time_and_give_up_after_the_last_try(db, world, app, receiver):
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_MAX_ATTEMPTS=2, WEBHOOK_RETRY_SECONDS=60)
    endpoint(db, "producer", world.producer, receiver.url, "order.cancelled")
    cancelled_event(app, world.order, "t")
    receiver.script = [500, 500]
    run_worker(app)
    waiting = db.row("SELECT attempts, failed_at, last_status, TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), send_after) AS wait"
                     " FROM webhook_delivery")
    assert (waiting["attempts"], waiting["failed_at"], waiting["last_status"]) == (1, None, 500)
    assert 50 < waiting["wait"] <= 60
    run_worker(app)
    assert len(receiver.received) == 1, "not due yet"
    db.execute("UPDATE webhook_delivery SET send_after = UTC_TIMESTAMP(6)")
    run_worker(app)
    given_up = db.row("SELECT attempts, failed_at, last_error FROM webhook_delivery")
    assert given_up["attempts"] == 2 and given_up["failed_at"] and "500" in given_up["last_error"]
    run_worker(app)
    assert len(receiver.received) == 2


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hooks", "http://localhost/hooks", "http://[::1]/hooks",
                                 "http://10.1.2.3/hooks", "http://192.168.0.10/hooks", "http://169.254.169.254/latest",
                                 "http://0.0.0.0/", "ftp://93.184.215.14/hooks", "file:///etc/passwd",
                                 "https://user:pass@93.184.215.14/", "not a url", "http://[::ffff:127.0.0.1]/"])
def test_an_endpoint_on_the_servers_own_network_or_not_http_is_refused_by_default(client, auth, db, world, url):
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/webhooks", data={"url": url, "events": ["order.placed"]})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "field-error" in page and ("public internet" in page or "http://" in page or "user name" in page
                                      or "cannot be found" in page)


def test_a_loopback_endpoint_is_refused_on_the_api_too_and_allowed_only_by_the_setting(client, db, world, app,
                                                                                      receiver):
    token = token_for(client, "farm@example.com", "producer")
    with db.unchanged():
        response = client.post("/api/v1/webhooks", headers=bearer(token),
                               json={"url": receiver.url, "events": ["order.placed"]})
    assert is_problem(response, 400) and response.get_json()["errors"][0]["field"] == "url"
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    response = client.post("/api/v1/webhooks", headers=bearer(token),
                           json={"url": receiver.url, "events": ["order.placed", "stock.low"]})
    assert response.status_code == 201
    assert response.get_json()["events"] == ["order.placed", "stock.low"] and response.get_json()["secret"]
    listed = client.get("/api/v1/webhooks", headers=bearer(token)).get_json()["items"]
    assert [item["url"] for item in listed] == [receiver.url] and "secret" not in listed[0]


def test_a_delivery_to_an_address_made_private_since_is_refused_and_nothing_is_sent(db, world, app, receiver):
    endpoint(db, "producer", world.producer, receiver.url, "order.cancelled")
    cancelled_event(app, world.order, "t")
    run_worker(app)
    assert receiver.received == []
    assert "public internet" in db.value("SELECT last_error FROM webhook_delivery")


def test_a_redirect_is_not_followed_and_counts_as_a_failure(db, world, private_allowed, receiver):
    private_allowed.config["WEBHOOK_MAX_ATTEMPTS"] = 1
    endpoint(db, "producer", world.producer, receiver.url, "order.cancelled")
    cancelled_event(private_allowed, world.order, "t")
    receiver.script = [302]
    run_worker(private_allowed)
    assert len(receiver.received) == 1
    assert db.value("SELECT last_status FROM webhook_delivery") == 302
    assert db.value("SELECT failed_at IS NOT NULL FROM webhook_delivery") == 1


def test_each_producer_hears_of_their_own_orders_and_the_operator_of_all(client, auth, db, world, operator,
                                                                         private_allowed, receiver):
    mine = endpoint(db, "producer", world.producer, receiver.url + "/farm", "order.placed,order.status_changed")
    theirs = endpoint(db, "producer", world.other_producer, receiver.url + "/dairy", "order.placed")
    coop = endpoint(db, "operator", operator, receiver.url + "/coop", "order.placed")
    db.add_to_cart(world.customer, world.product, 1)
    db.add_to_cart(world.customer, world.other_product, 1)
    check_out(client, auth, world)
    pairs = db.rows("SELECT d.endpoint_id, JSON_VALUE(e.payload, '$.data.producer.id') AS producer"
                    " FROM webhook_delivery d JOIN webhook_event e ON e.event_id = d.event_id")
    assert sorted((row["endpoint_id"], int(row["producer"])) for row in pairs) == sorted([
        (mine, world.producer), (theirs, world.other_producer), (coop, world.producer),
        (coop, world.other_producer)])
    run_worker(private_allowed)
    assert sorted(got["path"] for got in receiver.received) == ["/hooks/coop", "/hooks/coop", "/hooks/dairy",
                                                                "/hooks/farm"]


def test_order_events_follow_the_order_through_its_changes(client, auth, db, world, private_allowed):
    endpoint(db, "producer", world.producer, "http://127.0.0.1:9/", ",".join(webhooks.EVENTS))
    auth.login_producer()
    assert client.post("/dashboard/update-order-status", data={"order_id": world.order,
                                                                "status": "confirmed"}).status_code == 302
    auth.login_customer()
    db.execute("UPDATE orders SET status = 'pending' WHERE order_id = %s", (world.order,))
    assert client.post(f"/orders/{world.order}/cancel").status_code == 302
    kinds = [row["event_type"] for row in db.rows("SELECT event_type FROM webhook_event ORDER BY created_at")]
    assert kinds == ["order.status_changed", "order.cancelled"]
    statuses = [json.loads(row["payload"])["data"]["status"] for row in db.rows(
        "SELECT payload FROM webhook_event ORDER BY created_at")]
    assert statuses == ["confirmed", "cancelled"]


def test_stock_low_is_sent_once_as_stock_falls_to_its_level(client, db, world, private_allowed):
    endpoint(db, "producer", world.producer, "http://127.0.0.1:9/", "stock.low")
    token = token_for(client, "farm@example.com", "producer")
    adjust = f"/api/v1/products/{world.product}/stock/adjustments"
    assert client.post(adjust, headers=bearer(token), json={"by": "-39"}).status_code == 200  # 50 → 11: above 10
    assert db.value("SELECT COUNT(*) FROM webhook_event") == 0
    assert client.post(adjust, headers=bearer(token), json={"by": "-1"}).status_code == 200  # 11 → 10: low
    assert client.post(adjust, headers=bearer(token), json={"by": "-3"}).status_code == 200  # still low: no more
    payload = json.loads(db.value("SELECT payload FROM webhook_event WHERE event_type = 'stock.low'"))
    assert db.value("SELECT COUNT(*) FROM webhook_event") == 1
    assert payload["data"] == {"product_id": world.product, "name": "Potatoes", "unit": "kg",
                               "quantity_available": "10", "low_stock_level": "10"}
    assert client.put(f"/api/v1/products/{world.product}/stock", headers=bearer(token),
                      json={"quantity": "40"}).status_code == 200
    assert client.put(f"/api/v1/products/{world.product}/stock", headers=bearer(token),
                      json={"quantity": "2"}).status_code == 200
    assert db.value("SELECT COUNT(*) FROM webhook_event WHERE event_type = 'stock.low'") == 2, "a new fall"
    assert client.patch(f"/api/v1/products/{world.product}", headers=bearer(token),
                        json={"quantity_available": "30"}).status_code == 200
    assert client.patch(f"/api/v1/products/{world.product}", headers=bearer(token),
                        json={"quantity_available": "4"}).status_code == 200
    assert db.value("SELECT COUNT(*) FROM webhook_event WHERE event_type = 'stock.low'") == 3, "the product's own form"


def test_a_refused_change_writes_no_event(client, auth, db, world, private_allowed):
    endpoint(db, "producer", world.producer, "http://127.0.0.1:9/", ",".join(webhooks.EVENTS))
    db.add_to_cart(world.customer, world.low_product, 5)
    auth.login_customer()
    with db.unchanged():
        assert client.post("/checkout", data=world.choose()).status_code in (400, 409)
    assert db.value("SELECT COUNT(*) FROM webhook_event") == 0


def test_two_workers_at_once_send_each_event_once(db, world, private_allowed, receiver):
    endpoint(db, "producer", world.producer, receiver.url, "order.cancelled")
    for n in range(30):
        cancelled_event(private_allowed, world.order, f"n{n}")
    workers_at_once(private_allowed, webhooks.deliver_due)
    ids = [got["headers"]["Noeari-Event-Id"] for got in receiver.received]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert db.value("SELECT COUNT(*) FROM webhook_delivery WHERE delivered_at IS NOT NULL AND attempts = 1") == 30


def test_the_same_change_written_twice_is_one_event(db, world, app):
    endpoint(db, "producer", world.producer, "http://127.0.0.1:9/", "order.cancelled")
    first = cancelled_event(app, world.order, "same")
    again = cancelled_event(app, world.order, "same")
    assert first and again is None
    assert db.value("SELECT COUNT(*) FROM webhook_delivery") == 1


@pytest.mark.parametrize("role, page, remove", [("producer", "/dashboard/webhooks", "/dashboard/webhooks/{}/delete"),
                                                ("operator", "/admin/webhooks", "/admin/webhooks/{}/delete")])
def test_each_account_sees_and_removes_only_its_own_endpoints(client, auth, db, world, operator, role, page, remove):
    own_id = world.producer if role == "producer" else operator
    other_role, other_id = ("operator", operator) if role == "producer" else ("producer", world.producer)
    own = endpoint(db, role, own_id, "https://93.184.215.14/own")
    stranger = endpoint(db, "producer", world.other_producer, "https://93.184.215.14/stranger")
    other = endpoint(db, other_role, other_id, "https://93.184.215.14/other")
    getattr(auth, f"login_{role}")()
    shown = client.get(page).get_data(as_text=True)
    assert "/own" in shown and "/stranger" not in shown and "/other" not in shown
    for not_theirs in (stranger, other, 999999):
        with db.unchanged():
            assert client.post(remove.format(not_theirs)).status_code == 404
    assert client.post(remove.format(own)).status_code == 302
    assert db.value("SELECT COUNT(*) FROM webhook_endpoint WHERE endpoint_id = %s", (own,)) == 0


@pytest.mark.parametrize("data, message", [
    ({"url": "https://93.184.215.14/x"}, "Choose at least one event."),
    ({"url": "https://93.184.215.14/x", "events": ["order.eaten"]}, "not a valid choice"),
    ({"url": "", "events": ["order.placed"]}, "This field is required."),
    ({"url": "https://93.184.215.14/" + "x" * 500, "events": ["order.placed"]}, "500"),
    ({"url": "https://93.184.215.14/x", "events": ["order.placed"], "secret": "short"}, "16 to 100"),
])
def test_a_bad_endpoint_form_says_what_is_wrong_and_changes_nothing(client, auth, db, world, data, message):
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/webhooks", data=data)
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_an_account_may_have_at_most_twenty_endpoints(client, auth, db, world):
    for n in range(webhooks.MAX_ENDPOINTS):
        endpoint(db, "producer", world.producer, f"https://93.184.215.14/{n}")
    auth.login_producer()
    with db.unchanged():
        response = client.post("/dashboard/webhooks", data={"url": "https://93.184.215.14/x",
                                                            "events": ["order.placed"]})
    assert response.status_code == 400 and "remove one first" in response.get_data(as_text=True)


def test_a_delivery_goes_to_the_address_checked_keeping_the_host_name(db, world, private_allowed, receiver):
    endpoint(db, "producer", world.producer, receiver.url.replace("127.0.0.1", "localhost"), "order.cancelled")
    cancelled_event(private_allowed, world.order, "t")
    run_worker(private_allowed)
    assert receiver.received[0]["headers"]["Host"] == f"localhost:{receiver.server_port}"


def test_a_host_name_that_turns_inward_after_the_check_is_not_followed(db, world, app, receiver, monkeypatch):
    """A hostile DNS server answers a public address for the check, then loopback: the delivery still goes to
    the public address (unreachable here), never to the server's own network."""
    app.config.update(WEBHOOK_TIMEOUT_SECONDS=2, WEBHOOK_MAX_ATTEMPTS=1)
    real, asked = socket.getaddrinfo, []

    def rebinding(host, *args, **kwargs):
        if host != "rebind.example":
            return real(host, *args, **kwargs)
        asked.append(host)
        address = "93.184.215.14" if len(asked) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, receiver.server_port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    endpoint(db, "producer", world.producer, f"http://rebind.example:{receiver.server_port}/hooks", "order.cancelled")
    cancelled_event(app, world.order, "t")
    with app.app_context():
        assert webhooks.deliver_due("worker-1") == (0, 1)
    assert receiver.received == [] and asked == ["rebind.example"]
