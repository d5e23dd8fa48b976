"""Signup, login, logout and sessions, for both roles."""
import os
import stat
import subprocess
import sys

import pytest

from app import app as flask_app
from app import is_local_url, load_secret_key
from conftest import PASSWORD

ROLES = ["customer", "producer"]
NAME_FIELD = {"customer": "name", "producer": "business"}
TABLE = {"customer": "customer", "producer": "producer"}


def signup_data(role, email="new@example.com", password="s3cret-pass", confirm=None, name="Ada"):
    return {NAME_FIELD[role]: name, "email": email, "password": password,
            "confirm": password if confirm is None else confirm}


@pytest.mark.parametrize("role", ROLES)
def test_signup_creates_account_with_bcrypt_hash_and_logs_in(client, db, role):
    response = client.post(f"/signup/{role}", data=signup_data(role, email="  New@Example.COM "))
    assert response.status_code == 302
    row = db.row(f"SELECT * FROM {TABLE[role]} WHERE email = %s", ("new@example.com",))
    assert row is not None, "email is stored trimmed and lower-cased"
    assert row["password_hash"].startswith("$2b$04$")
    assert "s3cret-pass" not in str(row)
    with client.session_transaction() as session:
        assert session["role"] == role


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("changes, message", [
    ({"confirm": "different-pass"}, "The two passwords do not match."),
    ({"password": "short", "confirm": "short"}, "at least 8 characters"),
    ({"password": "é" * 37, "confirm": "é" * 37}, "at most 72 bytes"),
    ({"password": "abc\0defghi", "confirm": "abc\0defghi"}, "NUL character"),
    ({"email": "not-an-email"}, "Enter a valid email address."),
    ({"email": ""}, "This field is required."),
    ({"name": ""}, "This field is required."),
    ({"name": "x" * 200}, "Field cannot be longer than"),
])
def test_signup_validation_refuses_with_message_and_stores_nothing(client, db, role, changes, message):
    data, changes = signup_data(role), dict(changes)
    if "name" in changes:
        data[NAME_FIELD[role]] = changes.pop("name")
    data.update(changes)
    response = client.post(f"/signup/{role}", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.value(f"SELECT COUNT(*) FROM {TABLE[role]}") == 0


def test_password_of_exactly_72_bytes_is_accepted(client, db):
    response = client.post("/signup/customer", data=signup_data("customer", password="é" * 36))
    assert response.status_code == 302
    assert db.value("SELECT COUNT(*) FROM customer") == 1


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("email", ["jane@example.com", "Jane@Example.com", "JANE@EXAMPLE.COM "])
def test_signup_refuses_duplicate_email_in_any_case(client, db, role, email):
    add = db.add_customer if role == "customer" else db.add_producer
    add("jane@example.com")
    response = client.post(f"/signup/{role}", data=signup_data(role, email=email))
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)
    assert db.value(f"SELECT COUNT(*) FROM {TABLE[role]}") == 1


def test_signup_is_limited_per_client_and_the_refusal_stores_nothing(app, db):
    def sign_up(n, ip):
        return app.test_client().post("/signup/customer", data=signup_data("customer", email=f"new{n}@example.com"),
                                      environ_base={"REMOTE_ADDR": ip})

    for n in range(10):
        assert sign_up(n, "10.1.1.1").status_code == 302
    refused = sign_up(10, "10.1.1.1")
    assert refused.status_code == 429
    assert "Too many accounts have been made from this network" in refused.get_data(as_text=True)
    assert db.value("SELECT COUNT(*) FROM customer") == 10
    assert db.value("SELECT COUNT(*) FROM customer WHERE email = 'new10@example.com'") == 0
    assert sign_up(11, "10.1.1.2").status_code == 302, "another client is unaffected"
    db.execute("UPDATE signup_attempt SET attempted_at = attempted_at - INTERVAL 61 MINUTE")
    assert sign_up(12, "10.1.1.1").status_code == 302, "the hour passing lifts it"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("email, password", [
    ("nobody@example.com", PASSWORD),
    ("jane@example.com", "wrong password"),
    ("jane@example.com", "x" * 100),
])
def test_login_failure_shows_one_generic_message(client, db, role, email, password):
    add = db.add_customer if role == "customer" else db.add_producer
    add("jane@example.com")
    response = client.post(f"/login/{role}", data={"email": email, "password": password})
    assert response.status_code == 400
    assert "Incorrect email or password." in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "role" not in session


def test_customer_login_accepts_any_email_case(client, world):
    response = client.post("/login/customer", data={"email": "JANE@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/products"


def test_producer_login_lands_on_dashboard(client, world):
    response = client.post("/login/producer", data={"email": "farm@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/dashboard"
    assert "Hartley Farm" in client.get("/dashboard").get_data(as_text=True)


def test_login_as_one_role_ends_the_other(client, auth, world):
    auth.login_producer()
    with client.session_transaction() as session:
        session["leftover"] = "from the producer session"
    auth.login_customer()
    with client.session_transaction() as session:
        assert session["role"] == "customer"
        assert "leftover" not in session
    assert client.get("/dashboard").status_code == 302


def test_login_with_local_next_redirects_there(client, world):
    response = client.post("/login/producer?next=/dashboard%3Fx%3D1",
                           data={"email": "farm@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/dashboard?x=1"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", "http:/evil.example", "/\x00x", ""])
def test_login_never_redirects_off_site(client, world, target):
    response = client.post("/login/customer", query_string={"next": target},
                           data={"email": "jane@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/products"


@pytest.mark.parametrize("target, local", [("/cart", True), ("/products?page=2", True), ("//x.org", False),
                                           ("https://x.org", False), ("/\\x.org", False), (None, False)])
def test_is_local_url(target, local):
    assert is_local_url(target) is local


def test_get_logout_asks_and_does_not_log_out(client, auth, world):
    auth.login_customer()
    response = client.get("/logout")
    assert response.status_code == 200
    assert "Log out" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert session["role"] == "customer"


def test_post_logout_ends_the_session(client, auth, world):
    auth.login_producer()
    response = auth.logout()
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert "role" not in session
    assert client.get("/dashboard").status_code == 302


def test_session_of_deleted_account_is_dropped(client, auth, db, world):
    auth.login_customer()
    db.execute("SET FOREIGN_KEY_CHECKS = 0")
    db.execute("DELETE FROM customer WHERE customer_id = %s", (world.customer,))
    db.execute("SET FOREIGN_KEY_CHECKS = 1")
    client.get("/")
    with client.session_transaction() as session:
        assert "role" not in session


def test_secret_key_is_generated_once_with_mode_0600(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setattr(flask_app, "instance_path", str(tmp_path / "instance"))
    first = load_secret_key()
    path = tmp_path / "instance" / "secret_key"
    assert len(first) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret_key() == first


def test_secret_key_from_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.setattr(flask_app, "instance_path", str(tmp_path / "instance"))
    assert load_secret_key() == "from-the-environment"
    assert not (tmp_path / "instance").exists()


@pytest.mark.parametrize("setting, expected", [(None, "12"), ("5", "5")])
def test_bcrypt_cost_is_12_unless_bcrypt_rounds_says_otherwise(setting, expected):
    env = {key: value for key, value in os.environ.items() if key != "BCRYPT_ROUNDS"}
    if setting:
        env["BCRYPT_ROUNDS"] = setting
    result = subprocess.run([sys.executable, "-c", "from app import app; from accounts import hash_password;"
                             "app.app_context().push();"
                             "print(app.config['BCRYPT_ROUNDS'], hash_password('password123')[4:6])"],
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == [expected, expected.zfill(2)]
