"""The JSON API, /api/v1: signing up and tokens, the catalogue's reads, problem+json for everything that goes
wrong, and the OpenAPI document, which schemathesis holds every operation to."""
import datetime
import io
import pathlib
import re
import subprocess
import sys
from decimal import Decimal

import pytest
from PIL import Image

import api_document
import tokens
from conftest import PASSWORD, round_trips


def token_for(client, email="jane@example.com", role="customer", password=PASSWORD):
    """A live token for the account, used once: its first use notes when (once an hour), so that a test's
    "nothing changed" holds for the calls after it."""
    response = client.post("/api/v1/tokens", json={"email": email, "password": password, "role": role})
    assert response.status_code == 201, response.get_data(as_text=True)
    token = response.get_json()["token"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    return token


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def is_problem(response, status):
    body = response.get_json(force=True)
    return (response.status_code == status and response.mimetype == "application/problem+json"
            and body["status"] == status and body["title"])


# --- Signing up and tokens ------------------------------------------------------

@pytest.mark.parametrize("as_json", [True, False], ids=["json", "form"])
def test_a_script_signs_up_and_logs_in_with_json_or_form_data(client, db, world, as_json):
    fields = {"name": "Eve", "email": "eve@example.com", "password": "correct horse 42"}
    response = client.post("/api/v1/customers", **({"json": fields} if as_json else {"data": fields}))
    assert response.status_code == 201
    created = response.get_json()
    assert created == {"id": created["id"], "role": "customer", "name": "Eve", "email": "eve@example.com",
                       "status": "active", "reminders": True}
    assert "Set-Cookie" not in response.headers
    row = db.row("SELECT first_name, password_hash FROM customer WHERE email = 'eve@example.com'")
    assert row["first_name"] == "Eve" and row["password_hash"].startswith("$2b$")
    login = {"email": "eve@example.com", "password": "correct horse 42", "role": "customer", "name": "my script"}
    response = client.post("/api/v1/tokens", **({"json": login} if as_json else {"data": login}))
    assert response.status_code == 201 and "Set-Cookie" not in response.headers
    token = response.get_json()
    assert token["token"].startswith("noeari_") and token["name"] == "my script"
    expires = datetime.datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00"))
    assert datetime.timedelta(days=29) < expires - datetime.datetime.now(datetime.UTC) <= datetime.timedelta(days=30)
    assert db.value("SELECT token_hash FROM api_token") != token["token"], "only a hash is kept"
    me = client.get("/api/v1/me", headers=bearer(token["token"]))
    assert me.status_code == 200 and me.get_json()["email"] == "eve@example.com"


@pytest.mark.parametrize("fields, field", [
    ({"name": "Eve", "email": "not an email", "password": "correct horse 42"}, "email"),
    ({"name": "Eve", "email": "eve@example.com", "password": "short"}, "password"),
    ({"name": "", "email": "eve@example.com", "password": "correct horse 42"}, "name"),
    ({"email": "eve@example.com", "password": "correct horse 42"}, "name"),
    ({"name": "Eve", "email": "eve@example.com", "password": "x" * 80}, "password"),
])
def test_a_bad_sign_up_is_a_problem_naming_its_field_and_changes_nothing(client, db, world, fields, field):
    with db.unchanged():
        response = client.post("/api/v1/customers", json=fields)
        assert is_problem(response, 400)
        assert field in [error["field"] for error in response.get_json()["errors"]]


@pytest.mark.parametrize("raw, content_type", [("[1, 2]", "application/json"), ("{bad json", "application/json"),
                                               ('{"name": {"a": 1}}', "application/json"),
                                               ('"text"', "application/json")])
def test_a_body_that_is_not_a_json_object_is_a_400_problem(client, db, world, raw, content_type):
    with db.unchanged():
        assert is_problem(client.post("/api/v1/customers", data=raw, content_type=content_type), 400)


def test_an_email_in_use_is_a_409_problem(client, db, world):
    with db.unchanged():
        response = client.post("/api/v1/customers", json={"name": "J", "email": "jane@example.com",
                                                          "password": "correct horse 42"})
        assert is_problem(response, 409) and response.get_json()["errors"][0]["field"] == "email"


@pytest.mark.parametrize("role, email", [("customer", "jane@example.com"), ("producer", "farm@example.com"),
                                         ("operator", "op@example.com")])
def test_each_role_gets_a_token_for_its_own_account(client, db, world, operator, role, email):
    me = client.get("/api/v1/me", headers=bearer(token_for(client, email, role))).get_json()
    assert (me["role"], me["email"]) == (role, email)


def test_a_wrong_password_is_401_and_guessing_is_throttled_like_the_login_form(app, client, db, world):
    for _ in range(app.config["LOGIN_CLIENT_LIMIT"]):
        response = client.post("/api/v1/tokens", data={"email": "jane@example.com", "password": "wrong guess",
                                                       "role": "customer"})
        assert is_problem(response, 401)
    response = client.post("/api/v1/tokens", json={"email": "jane@example.com", "password": PASSWORD,
                                                   "role": "customer"})
    assert is_problem(response, 429) and response.headers["Retry-After"] == str(app.config["LOGIN_WINDOW_SECONDS"])
    assert db.value("SELECT COUNT(*) FROM api_token") == 0


def test_a_suspended_account_gets_no_token_and_loses_the_ones_it_had(client, auth, db, world, operator):
    token = token_for(client, "farm@example.com", "producer")
    auth.login_operator()
    assert client.post(f"/admin/producers/{world.producer}/suspend", data={"note": "Checks"}).status_code == 302
    auth.logout()
    assert is_problem(client.get("/api/v1/me", headers=bearer(token)), 401)
    response = client.post("/api/v1/tokens", json={"email": "farm@example.com", "password": PASSWORD,
                                                   "role": "producer"})
    assert is_problem(response, 403)


def test_a_password_change_revokes_every_token(client, auth, db, world):
    token = token_for(client)
    auth.login_customer()
    assert client.post("/account", data={"action": "password", "current_password": PASSWORD,
                                         "password": "new secret 1", "confirm": "new secret 1"}).status_code == 302
    assert is_problem(client.get("/api/v1/me", headers=bearer(token)), 401)


def test_tokens_are_listed_and_revoked_by_their_owner_only(client, db, world):
    first, second = token_for(client), token_for(client)
    other = token_for(client, "tom@example.com")
    listed = client.get("/api/v1/tokens", headers=bearer(first)).get_json()["items"]
    assert len(listed) == 2 and all("token" not in row for row in listed)
    tom_token = db.value("SELECT token_id FROM api_token WHERE role = 'customer' AND account_id = %s",
                         (world.other_customer,))
    with db.unchanged():
        assert is_problem(client.delete(f"/api/v1/tokens/{tom_token}", headers=bearer(first)), 404)
    second_id = max(row["id"] for row in listed)
    assert client.delete(f"/api/v1/tokens/{second_id}", headers=bearer(first)).status_code == 204
    assert is_problem(client.get("/api/v1/me", headers=bearer(second)), 401)
    assert client.get("/api/v1/me", headers=bearer(first)).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 200


@pytest.mark.parametrize("header", ["Bearer noeari_not-a-real-one", "Bearer ", "Bearer x" * 50, "Basic abc",
                                    "Bearer noeari_" + "a" * 200])
def test_a_bad_token_is_401(client, db, world, header):
    response = client.get("/api/v1/me", headers={"Authorization": header})
    assert is_problem(response, 401) and "Bearer" in response.headers["WWW-Authenticate"]


def test_an_expired_token_is_401(client, db, world):
    token = token_for(client)
    db.execute("UPDATE api_token SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND")
    assert is_problem(client.get("/api/v1/me", headers=bearer(token)), 401)


def test_a_browser_session_never_authenticates_an_api_call(client, auth, db, world):
    auth.login_customer()
    assert client.get("/account").status_code == 200
    response = client.get("/api/v1/me")
    assert is_problem(response, 401) and "Set-Cookie" not in response.headers
    with db.unchanged():
        assert is_problem(client.post("/api/v1/tokens", json={}), 400), "no CSRF token needed, nor taken"


# --- The catalogue -----------------------------------------------------------------

def test_products_page_by_cursor_through_every_product_on_sale_once(client, db, world):
    for n in range(30):
        db.add_product(world.producer, f"Parsnips {n:02d}")
    seen, url = [], "/api/v1/products?sort=name"
    while url:
        page = client.get(url).get_json()
        seen += [item["id"] for item in page["items"]]
        url = page["next"] and page["next"].replace("http://localhost", "")
    assert sorted(seen) == sorted(row["product_id"] for row in db.rows("SELECT product_id FROM product"
                                                                       " WHERE is_listed = 1"))
    assert len(seen) == len(set(seen)) == page["total"]


def test_a_product_reads_as_money_with_its_currency(client, db, world):
    product = client.get(f"/api/v1/products/{world.product}").get_json()
    assert product["price"] == {"amount": "1.80", "currency": "GBP"}
    assert product["producer"] == {"id": world.producer, "name": "Hartley Farm"}
    assert is_problem(client.get("/api/v1/products/999999"), 404)


def test_catalogue_reads_answer_304_while_nothing_changed(client, db, world):
    first = client.get("/api/v1/products")
    again = client.get("/api/v1/products", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    db.execute("UPDATE product SET price = 2.00 WHERE product_id = %s", (world.product,))
    assert client.get("/api/v1/products", headers={"If-None-Match": first.headers["ETag"]}).status_code == 200


@pytest.mark.parametrize("cursor", ["abc", "eyJwYWdlIjogLTF9", "eyJwYWdlIjogIngifQ", "%00", "e30"])
def test_a_cursor_the_api_did_not_make_is_a_400_problem(client, db, world, cursor):
    assert is_problem(client.get(f"/api/v1/products?cursor={cursor}"), 400)


def test_a_producer_comes_with_their_options_and_open_times(client, db, world, gate):
    producer = client.get(f"/api/v1/producers/{world.producer}").get_json()
    assert producer["name"] == "Hartley Farm"
    assert {option["kind"] for option in producer["options"]} == {"collection", "delivery"}
    saturday = [time for time in producer["open_times"] if time["key"].startswith(f"{gate}@")]
    assert saturday and saturday[0]["start"] == "09:00" and saturday[0]["ordering_closes_at"].endswith("Z")
    listed = client.get("/api/v1/producers").get_json()
    assert {row["id"] for row in listed["items"]} >= {world.producer, world.other_producer}
    assert is_problem(client.get("/api/v1/producers/999999"), 404)


@pytest.mark.parametrize("method, path", [("get", "/api/v1/nothing-here"), ("post", "/api/v1/producers"),
                                          ("put", "/api/v1/me"), ("get", "/api/v2/products")])
def test_every_error_under_api_is_problem_json(client, db, world, method, path):
    response = getattr(client, method)(path)
    assert response.mimetype == "application/problem+json" and response.status_code in (404, 405)


# --- The document -----------------------------------------------------------------

def test_the_document_names_every_operation_the_api_serves_and_nothing_else(app):
    served = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.rule.startswith(("/api/v1/", "/api/dfc/"))
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, operations in api_document.PATHS.items() for method in operations}
    assert served == documented
    for operations in api_document.PATHS.values():
        for operation in operations.values():
            assert operation["operationId"] and operation["responses"]


def test_the_docs_page_shows_every_operation(client, db):
    page = client.get("/api/docs").get_data(as_text=True)
    for path, operations in api_document.PATHS.items():
        for method in operations:
            assert f"{method.upper()} {path}" in page


# Schemathesis, its own command as a person would run it, reads the document a live server serves, then sends
# every operation generated requests, valid and not (with a customer's token, then each role's own operations
# with that role's token): no answer may be a server error, and each must match the document (status, content
# type, headers, schema).
SCHEMATHESIS_CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
                       "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
                       "missing_required_header,unsupported_method")


def test_schemathesis_finds_every_operation_keeping_to_the_document(app, live_server, db, world, operator,
                                                                     tmp_path):
    import requests
    app.config["API_RATE_PER_MINUTE"] = 1_000_000  # a thousand requests in seconds, each a fair one
    def token(email, role):
        return requests.post(f"{live_server}/api/v1/tokens", timeout=10,
                             json={"email": email, "password": PASSWORD, "role": role}).json()["token"]

    customer, producer = token("jane@example.com", "customer"), token("farm@example.com", "producer")
    coop = token("op@example.com", "operator")

    def run(*selection, bearer=customer):
        done = subprocess.run([str(pathlib.Path(sys.executable).parent / "schemathesis"), "run",
                               f"{live_server}/api/v1/openapi.json", "--checks", SCHEMATHESIS_CHECKS,
                               "--max-examples", "30", "--generation-deterministic", "--suppress-health-check",
                               "all", "--phases", "examples,coverage,fuzzing", *selection,
                               "--header", f"Authorization: Bearer {bearer}", "--request-timeout", "20",
                               "--no-color"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        selected, total = map(int, re.search(r"Selected: (\d+)/(\d+)", done.stdout).groups())
        tested = int(re.search(r"Tested: (\d+)", done.stdout).group(1))
        assert selected == tested
        return done.stdout, selected, total

    # Revoking a token comes last, alone: it may revoke the run's own token (its id is in GET /tokens), and
    # every operation after that would be tried as a stranger.
    first, selected, total = run("--exclude-operation-id", "revokeToken")
    stock, _, _ = run("--include-tag", "Producers", bearer=producer)
    hooks, _, _ = run("--include-tag", "Webhooks", bearer=producer)
    last, revoked, _ = run("--include-operation-id", "revokeToken")
    # The operator's own operations after that: a suspension among them may revoke the customer's token.
    admin, _, _ = run("--include-tag", "Operators", bearer=coop)
    (pathlib.Path(sys.executable).parents[2] / "var" / "schemathesis.txt").write_text(
        first + stock + hooks + last + admin)
    for own in (stock, hooks, admin):
        assert "401 Unauthorized (" not in own and "403 Forbidden (" not in own, "each role's own operations"
    print(first[first.find("SUMMARY"):])
    # It counts every operation but the one serving the document itself.
    documented = sum(len(operations) for operations in api_document.PATHS.values())
    assert selected + revoked == total == documented - 1, "every operation was tested"
    assert "401 Unauthorized (" not in first, "the token lived through the run"


# --- Customers: the cart, checkout, orders ---------------------------------------------

def test_a_customer_fills_the_cart_checks_out_once_and_changes_the_order(client, db, world):
    token = token_for(client)
    db.execute("DELETE FROM cart_item")
    line = client.put(f"/api/v1/cart/lines/{world.product}", json={"quantity": 3}, headers=bearer(token))
    assert line.status_code == 200 and line.get_json() == {"product_id": world.product, "quantity": "3",
                                                           "capped": False}
    cart = client.get("/api/v1/cart", headers=bearer(token)).get_json()
    [group] = cart["groups"]
    assert group["goods"] == {"amount": "5.40", "currency": "GBP"}
    key = next(time["key"] for time in group["open_times"] if time["place"] == "Gate")
    headers = dict(bearer(token), **{"Idempotency-Key": "script-checkout-0001"})
    first = client.post("/api/v1/checkout", data={f"when_{world.producer}": key}, headers=headers)
    assert first.status_code == 201, first.get_data(as_text=True)
    [order] = first.get_json()["orders"]
    assert order["total"] == {"amount": "5.40", "currency": "GBP"} and order["lines"][0]["quantity"] == "3"
    again = client.post("/api/v1/checkout", data={f"when_{world.producer}": key}, headers=headers)
    assert again.status_code == 201 and again.get_json() == first.get_json(), "a repeat gets the first answer"
    assert db.value("SELECT COUNT(*) FROM orders WHERE checkout_key = 'script-checkout-0001'") == 1
    assert db.value("SELECT quantity_available FROM stock WHERE product_id = %s", (world.product,)) == 47
    listed = client.get("/api/v1/orders", headers=bearer(token)).get_json()
    assert order["id"] in [row["id"] for row in listed["items"]]
    changed = client.put(f"/api/v1/orders/{order['id']}/lines/{world.product}", json={"quantity": "1"},
                         headers=bearer(token))
    assert changed.status_code == 200 and changed.get_json()["goods"]["amount"] == "1.80"
    cancelled = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=bearer(token))
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert db.value("SELECT quantity_available FROM stock WHERE product_id = %s", (world.product,)) == 50
    assert is_problem(client.post(f"/api/v1/orders/{order['id']}/cancel", headers=bearer(token)), 409)


@pytest.mark.parametrize("headers, fields, status", [
    ({}, {}, 400), ({"Idempotency-Key": "short"}, {}, 400), ({"Idempotency-Key": "x" * 44}, {}, 400),
    ({"Idempotency-Key": "a-good-key-00000001"}, {}, 400),
    ({"Idempotency-Key": "a-good-key-00000001"}, {"when_{producer}": "999@arranged"}, 409),
    ({"Idempotency-Key": "a-good-key-00000001"}, {"hub_when": "1@2099-06-06"}, 409),
])
def test_a_bad_checkout_is_a_problem_and_places_nothing(client, db, world, headers, fields, status):
    token = token_for(client)
    db.add_to_cart(world.customer, world.product, 1)
    fields = {name.format(producer=world.producer): value for name, value in fields.items()}
    with db.unchanged():
        assert is_problem(client.post("/api/v1/checkout", json=fields, headers=dict(bearer(token), **headers)),
                          status)


def test_one_idempotency_key_sent_eight_times_at_once_places_one_set_of_orders(app, db, world):
    import threading
    client = app.test_client()
    token = token_for(client)
    db.add_to_cart(world.customer, world.product, 2)
    db.add_to_cart(world.customer, world.other_product, 1)
    data = {f"when_{producer}": f"{option}@arranged" for producer, option in world.collection.items()}
    barrier, answers = threading.Barrier(8), []

    def send():
        barrier.wait()
        answers.append(app.test_client().post("/api/v1/checkout", data=data, headers=dict(
            bearer(token), **{"Idempotency-Key": "one-key-for-all-eight"})))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [answer.status_code for answer in answers] == [201] * 8
    assert len({json_text(answer) for answer in answers}) == 1, "every answer is the first one"
    assert db.value("SELECT COUNT(*) FROM orders WHERE checkout_key = 'one-key-for-all-eight'") == 2


def json_text(response):
    return response.get_data(as_text=True)


def test_fifty_stock_adjustments_at_once_add_up_exactly(app, db, world):
    import threading
    token = token_for(app.test_client(), "farm@example.com", "producer")
    amounts = [("-1.25" if n % 3 == 0 else "2.5") for n in range(50)]
    barrier, statuses = threading.Barrier(50), []

    def adjust(by):
        barrier.wait()
        statuses.append(app.test_client().post(f"/api/v1/products/{world.product}/stock/adjustments",
                                               json={"by": by}, headers=bearer(token)).status_code)

    threads = [threading.Thread(target=adjust, args=(by,)) for by in amounts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [200] * 50
    expected = 50 + sum(Decimal(by) for by in amounts)
    assert db.value("SELECT quantity_available FROM stock WHERE product_id = %s", (world.product,)) == expected


def test_stock_never_goes_below_zero_and_bad_amounts_are_refused(client, db, world):
    token = token_for(client, "farm@example.com", "producer")
    url = f"/api/v1/products/{world.product}/stock/adjustments"
    with db.unchanged():
        assert is_problem(client.post(url, json={"by": "-50.001"}, headers=bearer(token)), 409)
        for bad in ["abc", "1.0001", "NaN", "Infinity", "1e9", "", "2000000", "-1.7976931348623157e+308", "1e-400"]:
            assert is_problem(client.post(url, json={"by": bad}, headers=bearer(token)), 400), bad
    assert client.post(url, json={"by": "-50"}, headers=bearer(token)).get_json()["quantity_available"] == "0"
    assert client.put(f"/api/v1/products/{world.product}/stock", json={"quantity": "12.5"},
                      headers=bearer(token)).get_json()["quantity_available"] == "12.5"


# --- Every operation, for every kind of caller -----------------------------------------

CALLERS = ["anonymous", "customer", "another customer", "producer", "another producer", "operator",
           "expired token", "revoked token"]
TOKENS = {"customer": ("jane@example.com", "customer"), "another customer": ("tom@example.com", "customer"),
          "producer": ("farm@example.com", "producer"), "another producer": ("dairy@example.com", "producer"),
          "operator": ("op@example.com", "operator"), "expired token": ("jane@example.com", "customer"),
          "revoked token": ("jane@example.com", "customer")}
OK = {"customer": 200, "another customer": 200, "producer": 200, "another producer": 200, "operator": 200}


def only(status, *callers, others=403):
    """Status for these callers, others for the rest who hold a live token."""
    return {caller: status if caller in callers else others for caller in OK}


# Each operation (method, path, body) with what each caller with a live token gets; anonymous callers get
# 401 where a token is needed, and an expired or revoked token always gets 401. The world's order is Jane's
# from the farm; "another" customer and producer are Tom and the dairy.
PHOTO = {"image": "a PNG"}


def photo_bytes(colour=(200, 120, 40)):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "PNG")
    return buffer.getvalue()


MATRIX = [
    ("get", "/api/v1/products", None, OK, 200),
    ("get", "/api/v1/products/{product}", None, OK, 200),
    ("get", "/api/v1/producers", None, OK, 200),
    ("get", "/api/v1/producers/{producer}", None, OK, 200),
    ("get", "/api/v1/openapi.json", None, OK, 200),
    ("post", "/api/v1/customers", {"name": "Eve", "email": "eve@example.com", "password": "correct horse 42"},
     dict.fromkeys(OK, 201), 201),
    ("post", "/api/v1/tokens", {"email": "jane@example.com", "password": PASSWORD, "role": "customer"},
     dict.fromkeys(OK, 201), 201),
    ("get", "/api/v1/me", None, OK, 401),
    ("patch", "/api/v1/me", {"name": "Sam"}, OK, 401),
    ("get", "/api/v1/tokens", None, OK, 401),
    ("delete", "/api/v1/tokens/{token}", None, only(204, "customer", others=404), 401),
    ("get", "/api/v1/cart", None, only(200, "customer", "another customer"), 401),
    ("put", "/api/v1/cart/lines/{product}", {"quantity": "1"}, only(200, "customer", "another customer"), 401),
    ("delete", "/api/v1/cart/lines/{product}", None, only(204, "customer", "another customer"), 401),
    ("post", "/api/v1/checkout", {"when_{producer}": "{collection}@arranged"},
     only(201, "customer", "another customer"), 401),
    ("get", "/api/v1/orders", None, OK, 401),
    ("get", "/api/v1/orders/{order}", None, dict(OK, **{"another customer": 404, "another producer": 404}), 401),
    ("post", "/api/v1/orders/{order}/cancel", None,
     dict(only(200, "customer", "producer"), **{"another customer": 404, "another producer": 404}), 401),
    ("post", "/api/v1/orders/{order}/status", {"status": "confirmed"},
     dict(only(200, "producer"), **{"another producer": 404}), 401),
    ("put", "/api/v1/orders/{order}/lines/{product}", {"quantity": "1"},
     dict(only(200, "customer"), **{"another customer": 404}), 401),
    ("post", "/api/v1/orders/{order}/when", {"when": "{collection}@arranged"},
     dict(only(200, "customer"), **{"another customer": 404}), 401),
    ("post", "/api/v1/orders/{order}/shortages", {"product_id": "{product}", "quantity": "1", "reason": "Frost"},
     dict(only(200, "producer"), **{"another producer": 404}), 401),
    ("get", "/api/v1/packing-lists/{day}", None, only(200, "producer", "another producer"), 401),
    ("get", "/api/v1/admin/producers", None, only(200, "operator"), 401),
    ("post", "/api/v1/admin/producers/{producer}/{action}", {"note": "Checks"}, only(200, "operator"), 401),
    ("get", "/api/v1/admin/customers", None, only(200, "operator"), 401),
    ("post", "/api/v1/admin/customers/{customer}/{action}", {"note": "Checks"}, only(200, "operator"), 401),
    ("put", "/api/v1/products/{product}/stock", {"quantity": "5"},
     dict(only(200, "producer"), **{"another producer": 404}), 401),
    ("post", "/api/v1/products/{product}/stock/adjustments", {"by": "1"},
     dict(only(200, "producer"), **{"another producer": 404}), 401),
    ("post", "/api/v1/products", {"name": "Rye loaf", "category": "Bakery", "price": "3.50", "unit": "loaf"},
     only(201, "producer", "another producer"), 401),
    ("patch", "/api/v1/products/{product}", {"price": "2.10"}, dict(only(200, "producer"), **{"another producer": 404}),
     401),
    ("delete", "/api/v1/products/{product}", None, dict(only(200, "producer"), **{"another producer": 404}), 401),
    ("put", "/api/v1/products/{product}/photo", PHOTO, dict(only(200, "producer"), **{"another producer": 404}), 401),
    ("post", "/api/v1/orders/{weighed_order}/weights", {"product_id": "{weighed}", "weight": "1.9"},
     dict(only(200, "producer"), **{"another producer": 404}), 401),
    ("get", "/api/v1/webhooks", None, only(200, "producer", "another producer", "operator"), 401),
    ("post", "/api/v1/webhooks", {"url": "https://93.184.215.14/noeari", "events": ["order.placed"]},
     only(201, "producer", "another producer", "operator"), 401),
    ("delete", "/api/v1/webhooks/{endpoint}", None, dict(only(204, "producer"), **{"another producer": 404,
                                                                                   "operator": 404}), 401),
    ("get", "/api/dfc/producers/{producer}/catalog", None, OK, 200),
]


def test_the_matrix_covers_every_documented_operation():
    documented = {(method, path) for path, operations in api_document.PATHS.items() for method in operations}
    covered = {(method, re.sub(r"\{(product|producer|order|token|customer|endpoint)\}", r"{\1_id}",
                               path.replace("{weighed_order}", "{order}")))
               for method, path, *_ in MATRIX}
    assert covered == documented


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method, path, data, expected, anonymous", MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX])
def test_every_operation_for_every_caller(client, db, world, operator, caller, method, path, data, expected,
                                          anonymous):
    own_token = token_for(client)
    headers = {"Idempotency-Key": f"matrix-{caller.replace(' ', '-')}-0001"}
    if caller in TOKENS:
        email, role = TOKENS[caller]
        token = own_token if caller == "customer" else token_for(client, email, role)
        headers.update(bearer(token))
        if caller == "expired token":
            db.execute("UPDATE api_token SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND WHERE token_hash = %s",
                       (tokens_digest(token),))
        if caller == "revoked token":
            db.execute("UPDATE api_token SET revoked_at = UTC_TIMESTAMP() WHERE token_hash = %s",
                       (tokens_digest(token),))
    for customer in (world.customer, world.other_customer):
        db.add_to_cart(customer, world.product, 1)
    ids = {"product": world.product, "producer": world.producer, "order": world.order, "action": "suspend",
           "day": "2099-06-06",
           "customer": world.other_customer,
           "collection": world.collection[world.producer],
           "token": db.value("SELECT token_id FROM api_token ORDER BY token_id LIMIT 1")}
    if "weighed" in path:
        ids["weighed"] = db.add_product(world.producer, "Chicken", "9.00", 5, sold_by="weighed",
                                        estimated_weight="1.800", tolerance_percent="10")
        ids["weighed_order"] = db.add_order(world.customer, [(ids["weighed"], 1, "9.00")])
    if "{endpoint}" in path:
        ids["endpoint"] = db.execute("INSERT INTO webhook_endpoint (role, account_id, url, events, secret) VALUES"
                                     " ('producer', %s, 'https://hooks.example.com/x', 'order.placed', 'whsec_x')",
                                     (world.producer,))
    if data is PHOTO:
        payload = {"data": photo_bytes(), "content_type": "image/png"}
    else:
        body = {name.format(**ids): [item.format(**ids) for item in value] if isinstance(value, list)
                else ids[value[1:-1]] if value in ("{product}", "{weighed}") else value.format(**ids)
                for name, value in (data or {}).items()}
        payload = {"json": body if data else None}
    want = {"anonymous": anonymous, "expired token": 401, "revoked token": 401}.get(caller) or expected[caller]
    before = db.snapshot()
    response = getattr(client, method)(path.format(**ids), headers=headers, **payload)
    assert response.status_code == want, response.get_data(as_text=True)
    if want >= 400:
        assert response.mimetype == "application/problem+json"
        assert db.snapshot() == before, "a refused call changes nothing"


def tokens_digest(token):
    return tokens.digest(token)


def test_the_example_client_signs_up_shops_and_lists_its_orders_on_a_live_server(live_server, db, world):
    done = subprocess.run([sys.executable, str(pathlib.Path(__file__).parents[1] / "examples" / "client.py"),
                           live_server, "eve@example.com", "correct horse 42"], capture_output=True, text=True,
                          timeout=120)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sign up: 201 eve@example.com" in done.stdout and "check out: 201" in done.stdout
    eve = db.value("SELECT customer_id FROM customer WHERE email = 'eve@example.com'")
    placed = db.value("SELECT COUNT(*) FROM orders WHERE customer_id = %s", (eve,))
    assert placed >= 1 and f"orders: {placed} -" in done.stdout


def test_tokens_are_listed_and_revoked_from_the_account_page(client, auth, db, world):
    token = token_for(client, "farm@example.com", "producer")
    token_id = db.value("SELECT token_id FROM api_token")
    auth.login_producer()
    assert 'href="/account#tokens-heading"' in client.get("/dashboard").get_data(as_text=True)
    page = client.get("/account").get_data(as_text=True)
    assert "API token · made" in page and f'id="token-{token_id}"' in page
    auth.login_producer("dairy@example.com")
    with db.unchanged():
        assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 404, "not theirs"
    auth.login_producer()
    assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 302
    assert is_problem(client.get("/api/v1/me", headers=bearer(token)), 401)
    assert "No API tokens" in client.get("/account").get_data(as_text=True)


def test_the_api_s_own_500_and_503_are_problem_json(app, client, world):
    from werkzeug.exceptions import InternalServerError
    with app.test_request_context("/api/v1/products"):
        response = app.handle_http_exception(InternalServerError())
    assert is_problem(response, 500) and "Traceback" not in response.get_data(as_text=True)
    app.config.update(MYSQL_HOST="localhost", MYSQL_UNIX_SOCKET="/nonexistent/mysql.sock")
    response = client.get("/api/v1/products")
    assert is_problem(response, 503) and response.headers["Retry-After"] == "30"


def test_the_operator_suspends_a_producer_through_the_api_and_their_tokens_stop(client, db, world, operator):
    farm, op = token_for(client, "farm@example.com", "producer"), token_for(client, "op@example.com", "operator")
    listed = client.get("/api/v1/admin/producers?status=approved", headers=bearer(op)).get_json()
    assert {row["email"] for row in listed["items"]} >= {"farm@example.com", "dairy@example.com"}
    response = client.post(f"/api/v1/admin/producers/{world.producer}/suspend", json={"note": "Health check"},
                           headers=bearer(op))
    assert response.status_code == 200 and response.get_json()["status"] == "suspended"
    assert db.value("SELECT action FROM operator_audit ORDER BY audit_id DESC LIMIT 1") == "suspend"
    assert is_problem(client.get("/api/v1/me", headers=bearer(farm)), 401)
    with db.unchanged():
        assert is_problem(client.post(f"/api/v1/admin/producers/{world.producer}/suspend", headers=bearer(op)), 409)
        assert is_problem(client.post(f"/api/v1/admin/producers/{world.producer}/explode", headers=bearer(op)), 404)
        assert is_problem(client.post("/api/v1/admin/producers/999999/approve", headers=bearer(op)), 404)
        assert is_problem(client.post(f"/api/v1/admin/customers/{world.customer}/approve", headers=bearer(op)), 404)
        assert is_problem(client.get("/api/v1/admin/producers?status=gone", headers=bearer(op)), 400)
    found = client.get("/api/v1/admin/customers?q=tom", headers=bearer(op)).get_json()
    assert [row["email"] for row in found["items"]] == ["tom@example.com"]


def test_a_token_past_its_rate_gets_429_with_retry_after_and_others_do_not(app, client, db, world, clock):
    clock(datetime.datetime(2099, 6, 1, 12, 0, 15, tzinfo=datetime.UTC))
    app.config["API_RATE_PER_MINUTE"] = 3
    token, other = token_for(client), token_for(client, "tom@example.com")  # each used once already
    assert [client.get("/api/v1/products", headers=bearer(token)).status_code for _ in range(3)] == [200, 200, 429]
    response = client.get("/api/v1/me", headers=bearer(token))
    assert is_problem(response, 429) and response.headers["Retry-After"] == "45"
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 200, "another token has its own count"
    clock(datetime.datetime(2099, 6, 1, 12, 1, 0, tzinfo=datetime.UTC))
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200, "a new minute starts again"


def test_a_producer_records_a_shortage_and_reads_the_day_s_packing_list(client, db, world):
    db.execute("UPDATE orders SET fulfilment_date = '2099-06-06', slot_start = '09:00', slot_end = '12:00'"
               " WHERE order_id = %s", (world.order,))
    token = token_for(client, "farm@example.com", "producer")
    day = client.get("/api/v1/packing-lists/2099-06-06", headers=bearer(token)).get_json()
    assert [order["id"] for order in day["orders"]] == [world.order]
    assert day["picks"] == [{"product_id": world.product, "name": "Potatoes", "unit": "kg", "quantity": "2",
                             "line": day["picks"][0]["line"]}]
    response = client.post(f"/api/v1/orders/{world.order}/shortages", headers=bearer(token),
                           data={"product_id": world.product, "quantity": "1", "reason": "Frost took some"})
    assert response.status_code == 200 and response.get_json()["goods"]["amount"] == "1.80"
    assert db.value("SELECT note FROM order_status_history WHERE kind = 'shortage'") == "Frost took some"
    with db.unchanged():
        for bad in [{"product_id": world.product, "quantity": "1"},
                    {"product_id": world.product, "quantity": "5", "reason": "More"},
                    {"product_id": world.other_product, "quantity": "0", "reason": "Not ours"}]:
            assert client.post(f"/api/v1/orders/{world.order}/shortages", headers=bearer(token),
                               data=bad).status_code in (400, 404, 409)
        assert is_problem(client.get("/api/v1/packing-lists/2099-02-30", headers=bearer(token)), 400)
    assert client.get("/api/v1/packing-lists/2099-06-13", headers=bearer(token)).get_json()["orders"] == []


# --- The account, and orders by day ------------------------------------------------------

def test_an_account_changes_its_name_and_a_customer_their_reminders(client, db, world):
    token = token_for(client)
    response = client.patch("/api/v1/me", headers=bearer(token), json={"name": " Janey ", "reminders": False})
    assert response.status_code == 200 and response.get_json()["name"] == "Janey"
    assert response.get_json()["reminders"] is False
    assert db.row("SELECT first_name, reminders FROM customer WHERE customer_id = %s", (world.customer,)) == {
        "first_name": "Janey", "reminders": 0}
    farm = token_for(client, "farm@example.com", "producer")
    assert client.patch("/api/v1/me", headers=bearer(farm), data={"name": "Hartley Farms"}).status_code == 200
    assert db.value("SELECT business_name FROM producer WHERE producer_id = %s", (world.producer,)) == "Hartley Farms"


@pytest.mark.parametrize("role, fields, field", [
    ("customer", {"name": ""}, "name"), ("customer", {"name": "x" * 101}, "name"),
    ("customer", {"reminders": "maybe"}, "reminders"), ("customer", {"email": "new@example.com"}, "email"),
    ("customer", {"password": "another long one"}, "password"), ("producer", {"reminders": True}, "reminders"),
    ("customer", {"name": "Jo", "nickname": "J"}, "nickname"), ("customer", {}, None),
    ("customer", {"name": False}, "name"), ("customer", {"name": ["Jo", "Jay"]}, "name"),
    ("customer", {"reminders": [None, None]}, None), ("customer", {"reminders": {"on": 1}}, "reminders"),
])
def test_an_account_change_that_is_not_allowed_says_why_and_changes_nothing(client, db, world, role, fields,
                                                                           field):
    email = "jane@example.com" if role == "customer" else "farm@example.com"
    token = token_for(client, email, role)
    with db.unchanged():
        response = client.patch("/api/v1/me", headers=bearer(token), json=fields)
    assert is_problem(response, 400)
    assert field is None or field in {error["field"] for error in response.get_json()["errors"]}


def test_orders_are_listed_by_the_day_they_are_collected(client, db, world, operator):
    saturday = datetime.date(2099, 6, 6)
    db.execute("UPDATE orders SET fulfilment_date = %s, slot_start = '09:00', slot_end = '12:00'"
               " WHERE order_id IN (%s, %s)",
               (saturday, world.order, world.other_order))
    later = db.add_order(world.customer, [(world.product, 1, "1.80")])
    for email, role, expected in [("farm@example.com", "producer", [world.order]),
                                  ("jane@example.com", "customer", [world.order]),
                                  ("op@example.com", "operator", [world.other_order, world.order])]:
        token = token_for(client, email, role)
        listed = client.get("/api/v1/orders?date=2099-06-06", headers=bearer(token)).get_json()
        assert [order["id"] for order in listed["items"]] == expected and listed["total"] == len(expected)
        assert later not in {order["id"] for order in listed["items"]}
    for bad in ("2099-13-01", "tomorrow", "0000-01-01", "2099-6-6"):
        assert is_problem(client.get(f"/api/v1/orders?date={bad}", headers=bearer(token)), 400)


def test_the_product_list_comes_from_the_shared_cache_and_a_change_shows_at_once(client, db, world):
    token = token_for(client)
    first = client.get("/api/v1/products?category=Vegetables", headers=bearer(token))
    assert [item["name"] for item in first.get_json()["items"]] == ["Kale", "Potatoes"]
    assert round_trips(client, "/api/v1/products?category=Vegetables") == 1, "the catalogue version, nothing else"
    farm = token_for(client, "farm@example.com", "producer")
    assert client.patch(f"/api/v1/products/{world.product}", headers=bearer(farm),
                        json={"name": "Pink fir potatoes"}).status_code == 200
    again = client.get("/api/v1/products?category=Vegetables", headers=bearer(token))
    assert [item["name"] for item in again.get_json()["items"]] == ["Kale", "Pink fir potatoes"]
    assert again.headers["ETag"] != first.headers["ETag"]


def test_a_busy_token_s_count_is_written_a_batch_at_a_time_and_every_process_sees_it(app, client, db, world):
    token_for(client)
    token_id = db.value("SELECT token_id FROM api_token")
    now = datetime.datetime(2099, 6, 1, 12, 0, 15, tzinfo=datetime.UTC)
    one, other = tokens.RateMeter(), tokens.RateMeter()  # two processes
    with app.app_context():
        counts = [one.count(token_id, now, 10) for _ in range(25)]
        assert counts == list(range(1, 26)), "exact within a process"
        assert db.value("SELECT requests FROM api_rate WHERE token_id = %s", (token_id,)) == 21, "1, then 10, then 10"
        assert other.count(token_id, now, 10) == 22, "another process starts from what is written"
        assert one.count(token_id, now + datetime.timedelta(minutes=1), 10) == 1, "a new minute starts again"
