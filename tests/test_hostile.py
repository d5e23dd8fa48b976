"""Hostile input: a corpus sent to every field of every POST route, as every role.

Each response must be below 500 and must not echo a payload unescaped, and wherever the input
was refused the database must be exactly as it was.
"""
import datetime
from urllib.parse import quote_from_bytes

import pytest

import accounts
from conftest import PASSWORD

MISSING, ARRAY, BRACKETS = object(), object(), object()

CORPUS = [
    # SQL injection
    "' OR '1'='1", "'; DROP TABLE customer; --", "\" OR \"\"=\"", "1; SELECT SLEEP(5)",
    "' UNION SELECT password_hash FROM producer --", "admin'--", "1 AND 1=1", "%' AND '%'='",
    # XSS, attribute breaking, template injection
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "' onmouseover='alert(1)",
    "</textarea><script>alert(1)</script>", "<svg/onload=alert(1)>", "javascript:alert(1)", "{{7*7}}{% raw %}",
    # Very long strings
    "A" * 10_000, "é" * 10_000, "9" * 10_000,
    # NUL bytes and control characters
    "\x00", "abc\x00def", "\r\nX-Injected: 1", "\t\x0b\x0c",
    # Invalid UTF-8, sent as raw bytes
    b"\xff\xfe\xfd", b"abc\xc3\x28def", b"\xed\xa0\x80",
    # Emoji and tricky Unicode
    "🍯🐝", "👩🏽‍🌾", "\u202eevil", "Z̴̡̛a̷l̸g̵o̴",
    # Numbers: negative, float, exponent, huge, odd forms
    "-1", "-0", "0", "1.5", "1e3", "1e308", "-1e308", "NaN", "Infinity", "99999999999999999999999999",
    "0x10", "١٢٣", " 7 ", "+5",
    # Empty and blank
    "", "   ",
    # Missing fields, and arrays where a scalar is expected
    MISSING, ARRAY, BRACKETS,
]
assert len(CORPUS) >= 40

PRODUCT = {"name": "Duck eggs", "description": "Rich.", "category": "Dairy & Eggs", "price": "4.50",
           "unit": "dozen", "quantity_available": "12", "quantity_seen": "12", "reorder_threshold": "3",
           "is_available": "y", "sold_by": "measure", "measure": "kg", "step": "0.25", "min_quantity": "0.5",
           "max_quantity": "5", "estimated_weight": "1.8", "tolerance_percent": "10"}
OPTION = {"kind": "delivery", "name": "Van", "address": "", "postcodes": "BS1, BA", "instructions": "Ring",
          "fee": "3.50", "minimum_order": "15", "free_over": "40", "cutoff_hours": "24", "capacity": "20",
          "is_active": "y", "payment_method": "credit"}
ROUTES = {
    "/signup/customer": {"name": "Eve", "email": "eve@example.com", "password": PASSWORD, "confirm": PASSWORD},
    "/signup/producer": {"business": "Eve's", "email": "eve@example.com", "password": PASSWORD, "confirm": PASSWORD},
    "/login/customer": {"email": "jane@example.com", "password": PASSWORD},
    "/login/producer": {"email": "farm@example.com", "password": PASSWORD},
    "/login/operator": {"email": "op@example.com", "password": PASSWORD},
    "/logout": {"confirm": "yes"},
    "/cart/add": {"product_id": "{product}", "quantity": "1", "next": "/products"},
    "/cart/update": {"product_id": "{product}", "quantity": "1"},
    "/checkout": {"when_{producer}": "{delivery}@arranged", "delivery_address": "1 Lane", "postcode": "BS1 4DJ",
                  "phone": "0117 496 0000", "hub_when": ""},
    "/orders/{order}/cancel": {"confirm": "yes"},
    "/orders/{order}/lines/{product}": {"quantity": "1"},
    "/orders/{order}/add": {"product_id": "{product}", "quantity": "1"},
    "/orders/{order}/when": {"when": "{delivery}@arranged"},
    "/baskets/{basket}/when": {"when": "{hub_slot}@2099-06-13"},
    "/dashboard/orders/{order}/lines/{product}": {"quantity": "1", "reason": "Frost took the crop."},
    "/dashboard/update-stock": {"product_id": "{product}", "quantity": "5"},
    "/dashboard/update-order-status": {"order_id": "{order}", "status": "confirmed", "next": "/dashboard"},
    "/dashboard/products/new": PRODUCT,
    "/dashboard/products/{product}/edit": PRODUCT,
    "/dashboard/products/{product}/delete": {"confirm": "yes"},
    "/dashboard/products/{product}/availability": {"next": "/dashboard"},
    "/dashboard/orders/{order}/paid": {"paid": "1", "next": "/dashboard"},
    "/dashboard/orders/{order}/weights": {"weight-{order}-{product}": "1.9", "confirm": "{order}-{product}"},
    "/dashboard/profile": {"description": "Grass-fed.", "town": "Bath", "phone": "01225 555 027",
                           "public_email": "hi@farm.example", "website": "https://farm.example", "payment_info": "Cash"},
    "/dashboard/fulfilment/new": OPTION,
    "/dashboard/fulfilment/{collection}/edit": OPTION,
    "/dashboard/fulfilment/{collection}/delete": {"confirm": "yes"},
    "/dashboard/fulfilment/{collection}/slots": {"weekday": "5", "start": "09:00", "end": "12:00"},
    "/dashboard/fulfilment/{collection}/slots/{slot}/delete": {"confirm": "yes"},
    "/dashboard/closures": {"start_date": "{soon}", "end_date": "{soon}", "note": "Away"},
    "/dashboard/closures/{closure}/delete": {"confirm": "yes"},
    "/admin/producers/{other_producer}/suspend": {"note": "Complaints."},
    "/admin/producers/{other_producer}/reinstate": {"note": "Sorted out."},
    "/admin/customers/{other_customer}/suspend": {"note": "Chargebacks."},
    "/admin/customers/{other_customer}/balance": {"amount": "10.00", "reference": "BANK-1"},
    "/admin/producers/{other_producer}/fee": {"fee_percent": "2.5"},
    "/admin/producers/{other_producer}/payouts": {"direction": "payout", "amount": "1.00", "reference": "PAY-1"},
    "/dashboard/orders/{order}/refunds/{product}": {"quantity": "1", "reason": "Spoilt."},
    "/admin/emails/{email}/retry": {"confirm": "yes"},
    "/password/forgot/customer": {"email": "jane@example.com"},
    "/password/reset/{token}": {"password": "new secret 1", "confirm": "new secret 1"},
    "/account name": {"action": "name", "name": "Jane", "business": "Farm"},
    "/account email": {"action": "email", "email": "new@example.com", "current_password": PASSWORD},
    "/account password": {"action": "password", "current_password": PASSWORD, "password": "new secret 1",
                          "confirm": "new secret 1"},
}
CASES = [(route, field) for route, form in ROUTES.items() for field in form]
REQUIRED_ROLES = {"/cart/": {"customer"}, "/checkout": {"customer"}, "/orders/": {"customer"}, "/baskets/": {"customer"},
                  "/dashboard/": {"producer"}, "/admin/": {"operator"}, "/account": {"customer", "producer", "operator"}}


def allowed(role, path):
    """Whether role may use path at all; anyone else is sent to log in with nothing changed."""
    needed = [roles for prefix, roles in REQUIRED_ROLES.items() if path.startswith(prefix)]
    return not needed or role in needed[0]
ROLES = [None, "customer", "producer", "operator"]


def encode(pairs):
    """An urlencoded body from (name, str or bytes) pairs; bytes go over the wire unchanged."""
    parts = []
    for name, value in pairs:
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        parts.append(f"{quote_from_bytes(name.encode())}={quote_from_bytes(raw)}")
    return "&".join(parts)


def body_with(form, field, payload, ids):
    pairs = []
    for name, value in form.items():
        value = value.format(**ids) if isinstance(value, str) else value
        if name != field:
            pairs.append((name.format(**ids), value))
        elif payload is ARRAY:
            pairs += [(name.format(**ids), value), (name.format(**ids), "2")]
        elif payload is BRACKETS:
            pairs += [(f"{name.format(**ids)}[]", value), (f"{name.format(**ids)}[]", "2")]
        elif payload is not MISSING:
            pairs.append((name.format(**ids), payload))
    return encode(pairs)


def echoes_unescaped(page, payload):
    """True when a payload with HTML-significant characters comes back as it was sent."""
    return isinstance(payload, str) and any(ch in payload for ch in "<>\"'") and payload in page


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role or "anonymous")
@pytest.mark.parametrize("route, field", CASES, ids=[f"{route}:{field}" for route, field in CASES])
def test_hostile_input(app, client, auth, db, world, operator, role, route, field):
    if role == "customer":
        auth.login_customer()
    elif role == "producer":
        auth.login_producer()
    elif role == "operator":
        auth.login_operator()
    db.add_to_cart(world.customer, world.product, 1)
    with app.app_context():
        account = db.row("SELECT customer_id AS id, password_hash, email FROM customer WHERE customer_id = %s",
                         (world.customer,))
        token = accounts.reset_serializer().dumps(
            {"role": "customer", "id": account["id"], "fp": accounts.reset_fingerprint(account)})
    slot = db.add_slot(world.collection[world.producer], 3)
    closure = db.execute("INSERT INTO producer_closure (producer_id, start_date, end_date) VALUES (%s, %s, %s)",
                         (world.producer, "2099-03-01", "2099-03-02"))
    ids = {"product": world.product, "order": world.order, "token": token, "producer": world.producer,
           "delivery": world.delivery[world.producer], "collection": world.collection[world.producer], "slot": slot,
           "other_producer": world.other_producer, "other_customer": world.other_customer,
           "email": db.execute("INSERT INTO email_outbox (dedupe_key, recipient, subject, body_text, failed_at)"
                               " VALUES ('k', 'a@x.org', 'Hi', 'x', UTC_TIMESTAMP())"),
           "closure": closure, "soon": (datetime.date.today() + datetime.timedelta(days=30)).isoformat(),
           **db.add_basket(world.customer, world.order)}
    path = route.split(" ")[0].format(**ids)
    for payload in CORPUS:
        before = db.snapshot()
        response = client.post(path, data=body_with(ROUTES[route], field, payload, ids),
                               content_type="application/x-www-form-urlencoded")
        page = response.get_data(as_text=True)
        shown = payload if isinstance(payload, (str, bytes)) else repr(payload)
        assert response.status_code < 500, f"{shown!r} gave {response.status_code}"
        assert not echoes_unescaped(page, payload), f"{shown!r} came back unescaped"
        refused = response.status_code >= 400 or not allowed(role, path)
        if refused:
            assert db.snapshot() == before, f"{shown!r} was refused but changed the database"
