"""The JSON API, /api/v1: signing up and tokens, the catalogue's reads, problem+json for everything that goes
wrong, and the OpenAPI document, which schemathesis holds every operation to."""
import datetime
import pathlib
import re
import subprocess
import sys

import pytest

import api_document
from conftest import PASSWORD


def token_for(client, email="jane@example.com", role="customer", password=PASSWORD):
    response = client.post("/api/v1/tokens", json={"email": email, "password": password, "role": role})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["token"]


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
                       "status": "active"}
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


@pytest.mark.parametrize("method, path", [("get", "/api/v1/nothing-here"), ("post", "/api/v1/products"),
                                          ("put", "/api/v1/me"), ("get", "/api/v2/products")])
def test_every_error_under_api_is_problem_json(client, db, world, method, path):
    response = getattr(client, method)(path)
    assert response.mimetype == "application/problem+json" and response.status_code in (404, 405)


# --- The document -----------------------------------------------------------------

def test_the_document_names_every_operation_the_api_serves_and_nothing_else(app):
    served = {(rule.rule.replace("<int:", "{").replace(">", "}"), method.lower())
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
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
# every operation generated requests, valid and not (with a customer's token): no answer may be a server
# error, and each must match the document (status, content type, headers, schema).
SCHEMATHESIS_CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
                       "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
                       "missing_required_header,unsupported_method")


def test_schemathesis_finds_every_operation_keeping_to_the_document(live_server, db, world, tmp_path):
    import requests
    token = requests.post(f"{live_server}/api/v1/tokens", timeout=10,
                          json={"email": "jane@example.com", "password": PASSWORD, "role": "customer"}).json()["token"]
    # An id its generated DELETE /tokens/{token_id} will not hit, so the token lives through the run.
    db.execute("UPDATE api_token SET token_id = 2000000000")
    done = subprocess.run([str(pathlib.Path(sys.executable).parent / "schemathesis"), "run",
                           f"{live_server}/api/v1/openapi.json", "--checks", SCHEMATHESIS_CHECKS,
                           "--max-examples", "30", "--generation-deterministic", "--suppress-health-check", "all",
                           # The stateful phase follows GET /tokens to DELETE /tokens/{id}: it would revoke
                           # the run's own token, and test everything after that as a stranger.
                           "--phases", "examples,coverage,fuzzing",
                           "--header", f"Authorization: Bearer {token}", "--request-timeout", "20",
                           "--no-color"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    summary = done.stdout[done.stdout.find("SUMMARY"):] if "SUMMARY" in done.stdout else done.stdout[-3000:]
    print(summary)
    (pathlib.Path(sys.executable).parents[2] / "var" / "schemathesis.txt").write_text(done.stdout)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    selected, total = map(int, re.search(r"Selected: (\d+)/(\d+)", done.stdout).groups())
    tested = int(re.search(r"Tested: (\d+)", done.stdout).group(1))
    # It counts every operation but the one serving the document itself.
    documented = sum(len(operations) for operations in api_document.PATHS.values())
    assert selected == total == tested == documented - 1, "every operation was tested"
