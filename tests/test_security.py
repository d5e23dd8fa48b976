"""Login throttling, revocable sessions, password reset by email, the account page, and headers."""
import email
import importlib.util
import os
import re
import time

import bcrypt
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

import accounts
from conftest import PASSWORD, run_worker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail_login(client, email="jane@example.com", role="customer", password="wrong password", ip="127.0.0.1"):
    return client.post(f"/login/{role}", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


# --- Throttling ---------------------------------------------------------------

def test_sixth_attempt_for_an_email_is_refused_even_with_the_right_password(client, db, world):
    for _ in range(5):
        assert fail_login(client).status_code == 400
    response = fail_login(client, password=PASSWORD)
    assert response.status_code == 429
    assert "Please wait 15 minutes" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) == 900
    with client.session_transaction() as session:
        assert "role" not in session


def test_another_email_from_the_same_client_still_works(client, db, world):
    for _ in range(5):
        fail_login(client)
    assert fail_login(client, email="tom@example.com", password=PASSWORD).status_code == 302


def test_the_throttle_is_per_email_across_roles_and_unknown_emails_count_too(client, db, world):
    for _ in range(5):
        fail_login(client, email="ghost@example.com", role="producer")
    assert fail_login(client, email="ghost@example.com", role="customer").status_code == 429


def test_the_window_passing_lets_the_email_try_again(client, db, world):
    for _ in range(5):
        fail_login(client)
    assert fail_login(client, password=PASSWORD).status_code == 429
    db.execute("UPDATE login_failure SET failed_at = failed_at - INTERVAL 16 MINUTE")
    assert fail_login(client, password=PASSWORD).status_code == 302


def test_a_success_forgives_only_that_clients_failures(client, db, world):
    for _ in range(4):
        fail_login(client)
    for _ in range(3):
        fail_login(client, ip="203.0.113.9")
    assert fail_login(client, password=PASSWORD).status_code == 302
    assert db.value("SELECT COUNT(*) FROM login_failure WHERE email = 'jane@example.com'") == 3, (
        "the other client's failures still count")
    for _ in range(4):
        fail_login(app_client(client))
    assert fail_login(app_client(client), password=PASSWORD).status_code == 302


def app_client(client):
    """A new browser (no cookies) on the same address."""
    return client.application.test_client()


def test_another_clients_failures_never_refuse_a_correct_password(client, db, world):
    """F2: five wrong passwords from an attacker's address do not lock out the owner elsewhere."""
    for _ in range(5):
        assert fail_login(client, ip="203.0.113.66").status_code == 400
    assert fail_login(client, ip="203.0.113.66", password=PASSWORD).status_code == 429
    assert fail_login(app_client(client), ip="198.51.100.20", password=PASSWORD).status_code == 302
    assert db.value("SELECT COUNT(*) FROM login_failure WHERE client = 'ip:203.0.113.66'") == 5


def test_a_browser_that_logged_in_before_is_its_own_client_even_behind_the_attackers_address(app, db, world):
    owner, attacker = app.test_client(), app.test_client()
    assert fail_login(owner, password=PASSWORD).status_code == 302
    device = owner.get_cookie("device")
    assert device and device.http_only and device.same_site == "Lax"
    assert device.expires.year >= 2027
    owner.post("/logout")
    for _ in range(5):
        fail_login(attacker)
    assert fail_login(attacker, password=PASSWORD).status_code == 429, "the attacker's browser is refused"
    assert fail_login(owner, password=PASSWORD).status_code == 302, "the owner's known browser is not"
    assert db.value("SELECT COUNT(*) FROM login_failure WHERE trusted = 0") == 5


def test_a_device_cookie_only_vouches_for_the_emails_that_logged_in_on_it(app, db, world):
    browser = app.test_client()
    assert fail_login(browser, email="tom@example.com", password=PASSWORD).status_code == 302
    for _ in range(5):
        fail_login(browser)
    assert fail_login(browser, password=PASSWORD).status_code == 429
    forged = app.test_client()
    forged.set_cookie("device", "eyJpZCI6IngiLCJlbWFpbHMiOltdfQ.forged")
    for _ in range(5):
        fail_login(forged, ip="203.0.113.5")
    assert fail_login(forged, ip="203.0.113.5", password=PASSWORD).status_code == 429


def test_a_trusted_browser_gets_five_guesses_too(app, db, world):
    browser = app.test_client()
    fail_login(browser, password=PASSWORD)
    for _ in range(5):
        assert fail_login(browser).status_code == 400
    assert fail_login(browser, password=PASSWORD).status_code == 429
    assert db.value("SELECT COUNT(*) FROM login_failure WHERE trusted = 1 AND client LIKE 'device:%%'") == 5


def spread_failures(db, email, count):
    """count failures at email from count // 5 addresses, five each: what a botnet can do in a day."""
    db.execute("INSERT INTO login_failure (email, ip, client, failed_at) SELECT %s, CONCAT('10.0.', seq DIV 5),"
               " CONCAT('ip:10.0.', seq DIV 5), UTC_TIMESTAMP(6) - INTERVAL seq MINUTE FROM seq_0_to_1000"
               " WHERE seq < %s", (email, count))


def test_a_hundred_failures_in_a_day_leave_only_a_reset_link(app, client, db, world, smtp):
    spread_failures(db, "jane@example.com", 99)
    assert fail_login(client, ip="198.51.100.1").status_code == 400, "the hundredth guess is still checked"
    response = fail_login(app_client(client), ip="198.51.100.2", password=PASSWORD)
    assert response.status_code == 429
    assert "only a password reset unlocks it" in response.get_data(as_text=True)
    assert "Retry-After" not in response.headers

    client.post("/password/forgot/customer", data={"email": "jane@example.com"})
    path = reset_link(smtp.wait_for())
    assert client.post(path, data={"password": "brand new secret", "confirm": "brand new secret"}).status_code == 302
    assert db.value("SELECT COUNT(*) FROM login_failure WHERE email = 'jane@example.com'") == 0, (
        "a completed reset clears the email's failures")
    assert fail_login(app_client(client), ip="198.51.100.2", password="brand new secret").status_code == 302


def test_a_browser_the_account_knows_still_logs_in_past_the_daily_limit(app, db, world):
    owner = app.test_client()
    fail_login(owner, password=PASSWORD)
    spread_failures(db, "jane@example.com", 150)
    assert fail_login(app.test_client(), ip="198.51.100.3", password=PASSWORD).status_code == 429
    assert fail_login(owner, password=PASSWORD).status_code == 302


def test_fifty_failures_from_one_address_block_unknown_browsers_there_only(app, client, db, world):
    owner = app.test_client()
    assert fail_login(owner, ip="203.0.113.7", password=PASSWORD).status_code == 302
    for n in range(50):
        fail_login(client, email=f"guess{n}@example.com", ip="203.0.113.7")
    assert fail_login(app_client(client), password=PASSWORD, ip="203.0.113.7").status_code == 429
    assert fail_login(app_client(client), password=PASSWORD, ip="198.51.100.1").status_code == 302
    assert fail_login(owner, password=PASSWORD, ip="203.0.113.7").status_code == 302, (
        "a browser that has logged in to the account before is not locked out by its neighbours")


def test_the_throttle_is_checked_before_bcrypt_runs(client, db, world, monkeypatch):
    calls = []
    real_checkpw = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda *args: calls.append(1) or real_checkpw(*args))
    for _ in range(5):
        fail_login(client)
    assert len(calls) == 5
    for _ in range(20):
        assert fail_login(client).status_code == 429
    assert len(calls) == 5


def test_limits_are_configurable(app, client, db, world):
    app.config["LOGIN_CLIENT_LIMIT"] = 2
    fail_login(client)
    fail_login(client)
    assert fail_login(client, password=PASSWORD).status_code == 429


@pytest.mark.parametrize("action, fields", [
    ("email", {"email": "thief@example.com"}),
    ("password", {"password": "stolen passphrase", "confirm": "stolen passphrase"}),
])
def test_the_accounts_current_password_check_is_throttled_too(app, db, world, action, fields):
    """F3: a stolen session cookie (no device cookie) gets five guesses at the current password, then none."""
    owner = app.test_client()
    assert fail_login(owner, password=PASSWORD).status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", owner.get_cookie("session").value)
    before = db.row("SELECT email, password_hash FROM customer WHERE customer_id = %s", (world.customer,))
    for n in range(5):
        response = thief.post("/account", data=dict(fields, action=action, current_password=f"guess {n}"),
                              environ_base={"REMOTE_ADDR": "203.0.113.99"})
        assert response.status_code == 400
    response = thief.post("/account", data=dict(fields, action=action, current_password=PASSWORD),
                          environ_base={"REMOTE_ADDR": "203.0.113.99"})
    assert response.status_code == 429 and "Please wait 15 minutes" in response.get_data(as_text=True)
    assert db.row("SELECT email, password_hash FROM customer WHERE customer_id = %s", (world.customer,)) == before
    assert db.value("SELECT COUNT(*) FROM login_failure WHERE email = 'jane@example.com'"
                    " AND client = 'ip:203.0.113.99'") == 5
    response = owner.post("/account", data=dict(fields, action=action, current_password=PASSWORD))
    assert response.status_code == 302, "the owner's own browser is not locked out by the thief's guesses"


@pytest.fixture
def second_app(test_database):
    """A second instance of the app, loaded from app.py on its own, pointed at the same database."""
    spec = importlib.util.spec_from_file_location("noeari_second_instance", os.path.join(ROOT, "app.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.app.config.update(MYSQL_DB=test_database, TESTING=True, WTF_CSRF_ENABLED=False, BCRYPT_ROUNDS=4)
    return module.app


def test_the_count_is_shared_by_two_app_instances_on_one_database(app, second_app, db, world):
    assert second_app is not app
    first, second = app.test_client(), second_app.test_client()
    for _ in range(3):
        fail_login(first)
    for _ in range(2):
        fail_login(second)
    assert fail_login(first, password=PASSWORD).status_code == 429
    assert fail_login(second, password=PASSWORD).status_code == 429


def test_proxy_headers_are_ignored_unless_configured(client, db, world):
    for n in range(50):
        client.post("/login/customer", data={"email": f"g{n}@example.com", "password": "x"},
                    headers={"X-Forwarded-For": f"192.0.2.{n}"})
    assert fail_login(client, password=PASSWORD).status_code == 429, "the spoofed header changed nothing"


# --- Sessions -----------------------------------------------------------------

def session_cookie(client):
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def replay(app, cookie_value, path="/account"):
    stranger = app.test_client()
    stranger.set_cookie("session", cookie_value)
    return stranger.get(path)


def test_a_cookie_copied_before_logout_is_refused_after_it(app, client, auth, world):
    auth.login_producer()
    copied = session_cookie(client)
    assert replay(app, copied, "/dashboard").status_code == 200
    auth.logout()
    assert replay(app, copied, "/dashboard").status_code == 302


def test_a_cookie_copied_before_a_password_change_is_refused_after_it(app, client, auth, db, world):
    auth.login_customer()
    copied = session_cookie(client)
    response = client.post("/account", data={"action": "password", "current_password": PASSWORD,
                                              "password": "a new passphrase", "confirm": "a new passphrase"})
    assert response.status_code == 302
    assert replay(app, copied).status_code == 302
    assert client.get("/account").status_code == 200, "the session that changed it carries on"


def test_the_session_rotates_on_login(app, client, world):
    app.config["WTF_CSRF_ENABLED"] = True
    page = client.get("/login/customer").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    before = session_cookie(client)
    assert before, "the anonymous session holds the CSRF token"
    client.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD, "csrf_token": token})
    after = session_cookie(client)
    assert after and after != before
    assert replay(app, before).status_code == 302


@pytest.mark.parametrize("secure", [False, True])
def test_cookie_flags(app, client, world, secure):
    app.config["SESSION_COOKIE_SECURE"] = secure
    response = client.post("/login/customer", data={"email": "jane@example.com", "password": PASSWORD})
    cookies = {value.split("=")[0]: value for value in response.headers.getlist("Set-Cookie")}
    for name, days in [("session", 14), ("device", 365)]:
        cookie = cookies[name]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure
        expires = re.search(r"Expires=([^;]+)", cookie).group(1)
        lifetime = time.mktime(email.utils.parsedate(expires)) - time.mktime(time.gmtime())
        assert (days - 0.1) * 86400 < lifetime <= days * 86400 + 60


# --- Password reset -----------------------------------------------------------

def reset_link(message):
    body = message.get_payload(decode=True).decode()
    return re.search(r"https://shop\.example(/password/reset/\S+)", body).group(1)


def test_password_reset_end_to_end_through_smtp(app, client, db, world, smtp):
    response = client.post("/password/forgot/customer", data={"email": "Jane@Example.com"}, follow_redirects=True)
    assert "we have sent it a link" in response.get_data(as_text=True)
    message = smtp.wait_for()
    assert message["To"] == "jane@example.com" and "Reset your noeari password" in message["Subject"]
    path = reset_link(message)
    assert client.get(path).status_code == 200
    response = client.post(path, data={"password": "brand new secret", "confirm": "brand new secret"})
    assert response.status_code == 302 and response.headers["Location"] == "/login/customer"
    assert client.post("/login/customer", data={"email": "jane@example.com",
                                                "password": PASSWORD}).status_code == 400
    assert client.post("/login/customer", data={"email": "jane@example.com",
                                                "password": "brand new secret"}).status_code == 302


def test_a_reset_logs_out_every_session(app, client, auth, world, smtp):
    auth.login_customer()
    copied = session_cookie(client)
    app.test_client().post("/password/forgot/customer", data={"email": "jane@example.com"})
    app.test_client().post(reset_link(smtp.wait_for()), data={"password": "brand new secret",
                                                              "confirm": "brand new secret"})
    assert replay(app, copied).status_code == 302


def test_a_reset_link_sent_before_an_email_change_no_longer_works(client, auth, db, world, smtp):
    """Whoever had the old mailbox (a shared or lost one) cannot take the account back with an old link."""
    client.post("/password/forgot/customer", data={"email": "jane@example.com"})
    path = reset_link(smtp.wait_for())
    assert client.get(path).status_code == 200
    auth.login_customer()
    changed = client.post("/account", data={"action": "email", "email": "jane.new@example.com",
                                            "current_password": PASSWORD})
    assert changed.status_code == 302
    auth.logout()
    with db.unchanged():
        for method in ("get", "post"):
            response = getattr(client, method)(path, data={"password": "taken over!", "confirm": "taken over!"})
            assert response.status_code == 400 and "This link no longer works" in response.get_data(as_text=True)


def test_the_reset_page_sends_no_referrer(client, world, smtp):
    client.post("/password/forgot/customer", data={"email": "jane@example.com"})
    assert client.get(reset_link(smtp.wait_for())).headers["Referrer-Policy"] == "no-referrer"


def test_a_used_reset_link_fails(client, db, world, smtp):
    client.post("/password/forgot/producer", data={"email": "farm@example.com"})
    path = reset_link(smtp.wait_for())
    client.post(path, data={"password": "first new secret", "confirm": "first new secret"})
    with db.unchanged():
        for method in ("get", "post"):
            response = getattr(client, method)(path, data={"password": "second secret!", "confirm": "second secret!"})
            assert response.status_code == 400
            assert "This link no longer works" in response.get_data(as_text=True)


def test_an_expired_reset_link_fails(app, client, db, world):
    class HourOldSigner(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - 3601

    credentials = db.row("SELECT customer_id, password_hash, email FROM customer WHERE customer_id = %s", (world.customer,))
    token = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="password-reset", signer=HourOldSigner).dumps(
        {"role": "customer", "id": world.customer, "fp": accounts.reset_fingerprint(credentials)})
    with app.app_context():
        fresh = accounts.reset_serializer().dumps(
            {"role": "customer", "id": world.customer, "fp": accounts.reset_fingerprint(credentials)})
    assert client.get(f"/password/reset/{fresh}").status_code == 200
    with db.unchanged():
        response = client.post(f"/password/reset/{token}", data={"password": "too late now", "confirm": "too late now"})
        assert response.status_code == 400


@pytest.mark.parametrize("token", ["garbage", "eyJyb2xlIjoiY3VzdG9tZXIifQ.Zz.xx", "a" * 5000])
def test_a_forged_reset_link_fails(client, world, token):
    assert client.get(f"/password/reset/{token}").status_code == 400


def test_unknown_email_gets_exactly_the_known_email_answer(app, db, world, smtp):
    def ask(email_address):
        client = app.test_client()
        first = client.post("/password/forgot/customer", data={"email": email_address})
        page = client.get(first.headers["Location"]).get_data(as_text=True)
        return first.status_code, first.headers["Location"], re.sub(r'value="[^"]*"', "", page)

    assert ask("jane@example.com") == ask("nobody@example.com")
    smtp.wait_for(1)
    time.sleep(0.2)
    assert len(smtp.messages) == 1, "only the real account got mail"


def test_without_smtp_the_email_lands_in_the_outbox(app, client, world, tmp_path, caplog):
    app.config.update(SMTP_HOST=None, OUTBOX_FOLDER=str(tmp_path / "outbox"))
    caplog.set_level("INFO")
    client.post("/password/forgot/customer", data={"email": "jane@example.com"})
    run_worker(app)
    deadline = time.monotonic() + 10
    while not os.path.isdir(tmp_path / "outbox") or not os.listdir(tmp_path / "outbox"):
        assert time.monotonic() < deadline, "no .eml written"
        time.sleep(0.02)
    name = os.listdir(tmp_path / "outbox")[0]
    assert name.endswith(".eml")
    message = email.message_from_bytes((tmp_path / "outbox" / name).read_bytes())
    assert "/password/reset/" in message.get_payload(decode=True).decode()
    assert os.stat(tmp_path / "outbox" / name).st_mode & 0o777 == 0o600, "a reset link is for its owner alone"
    assert os.stat(tmp_path / "outbox").st_mode & 0o777 == 0o700
    assert "/password/reset/" not in caplog.text, "the link is not in the log"


def ask_for_reset(client, email_address, ip="127.0.0.1"):
    return client.post("/password/forgot/customer", data={"email": email_address}, environ_base={"REMOTE_ADDR": ip})


def test_reset_links_are_limited_to_three_an_hour_per_email(app, client, db, world):
    for n, ip in enumerate(["10.0.0.1", "10.0.0.2", "10.0.0.3"]):
        assert ask_for_reset(client, "jane@example.com", ip).status_code == 302
    refused = ask_for_reset(client, "JANE@example.com", "10.0.0.4")
    assert refused.status_code == 429
    assert "Several links have been asked for already" in refused.get_data(as_text=True)
    assert db.value("SELECT COUNT(*) FROM password_reset_request WHERE email = 'jane@example.com'") == 3
    assert ask_for_reset(client, "tom@example.com", "10.0.0.4").status_code == 302, "other emails are unaffected"
    run_worker(app)
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE recipient = 'jane@example.com'") == 3
    db.execute("UPDATE password_reset_request SET requested_at = requested_at - INTERVAL 61 MINUTE")
    assert ask_for_reset(client, "jane@example.com", "10.0.0.5").status_code == 302, "the hour passing lifts it"


def test_reset_requests_are_limited_per_client(app, client, db, world):
    for n in range(10):
        assert ask_for_reset(client, f"someone{n}@example.com", "10.0.0.9").status_code == 302
    assert ask_for_reset(client, "jane@example.com", "10.0.0.9").status_code == 429
    assert db.value("SELECT COUNT(*) FROM password_reset_request WHERE client = 'ip:10.0.0.9'") == 10
    assert ask_for_reset(client, "jane@example.com", "10.0.0.10").status_code == 302, "other clients are unaffected"


def test_forgot_for_an_unknown_role_is_404(client, world):
    assert client.get("/password/forgot/admin").status_code == 404


# --- Account page -------------------------------------------------------------

@pytest.mark.parametrize("role, field, table, column", [("customer", "name", "customer", "first_name"),
                                                        ("producer", "business", "producer", "business_name")])
def test_account_changes_the_display_name(client, auth, db, world, role, field, table, column):
    getattr(auth, f"login_{role}")()
    response = client.post("/account", data={"action": "name", field: "  Renamed Ltd  "}, follow_redirects=True)
    assert "Your name has been saved." in response.get_data(as_text=True)
    assert db.value(f"SELECT {column} FROM {table} WHERE email IN ('jane@example.com', 'farm@example.com')") \
        == "Renamed Ltd"


def test_account_password_change_needs_the_current_password(client, auth, db, world):
    auth.login_customer()
    with db.unchanged():
        response = client.post("/account", data={"action": "password", "current_password": "not it",
                                                 "password": "another secret", "confirm": "another secret"})
        assert response.status_code == 400
        assert "That is not your current password." in response.get_data(as_text=True)


def test_account_email_change_needs_the_password_and_keeps_uniqueness(client, auth, db, world):
    auth.login_customer()
    with db.unchanged():
        taken = client.post("/account", data={"action": "email", "email": "TOM@example.com", "current_password": PASSWORD})
        assert taken.status_code == 400 and "Another account already uses this email." in taken.get_data(as_text=True)
        wrong = client.post("/account", data={"action": "email", "email": "new@example.com", "current_password": "nope"})
        assert wrong.status_code == 400
    ok = client.post("/account", data={"action": "email", "email": "New@Example.com", "current_password": PASSWORD})
    assert ok.status_code == 302
    assert db.value("SELECT email FROM customer WHERE customer_id = %s", (world.customer,)) == "new@example.com"


def test_an_email_change_ends_the_accounts_other_sessions(app, client, auth, db, world):
    auth.login_customer()
    copied = session_cookie(client)
    assert replay(app, copied).status_code == 200
    response = client.post("/account", data={"action": "email", "email": "moved@example.com",
                                              "current_password": PASSWORD})
    assert response.status_code == 302
    assert db.value("SELECT email FROM customer WHERE customer_id = %s", (world.customer,)) == "moved@example.com"
    assert replay(app, copied).status_code == 302, "the other session is logged out"
    assert client.get("/account").status_code == 200, "the session that changed it carries on"


@pytest.mark.parametrize("data", [{}, {"action": "delete-everything"}, {"action": "name", "name": ""},
                                  {"action": "password", "current_password": PASSWORD, "password": "short",
                                   "confirm": "short"},
                                  {"action": "email", "email": "nope", "current_password": PASSWORD}])
def test_account_bad_input_is_400_and_changes_nothing(client, auth, db, world, data):
    auth.login_customer()
    with db.unchanged():
        assert client.post("/account", data=data).status_code == 400


def test_account_needs_a_login(client, world):
    assert client.get("/account").headers["Location"] == "/login/customer?next=/account"


# --- Headers ------------------------------------------------------------------

EXPECTED_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@pytest.mark.parametrize("method, path, status", [("get", "/products", 200), ("get", "/nope", 404),
                                                  ("get", "/dashboard", 302), ("get", "/static/style.css", 200),
                                                  ("post", "/login/customer", 400)])
@pytest.mark.parametrize("secure", [False, True])
def test_security_headers_are_on_every_response(app, client, world, method, path, status, secure):
    app.config["SESSION_COOKIE_SECURE"] = secure
    response = getattr(client, method)(path)
    assert response.status_code == status
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers[name] == value
    assert ("Strict-Transport-Security" in response.headers) is secure


def test_templates_have_no_inline_script_or_style():
    for folder, _, files in os.walk(os.path.join(ROOT, "templates")):
        for name in files:
            text = open(os.path.join(folder, name), encoding="utf-8").read()
            inline_script = re.search(r"<script(?![^>]*\ssrc=)", text)
            assert not inline_script and "<style" not in text and " style=" not in text, name
            assert "http://" not in text and "https://" not in text, f"{name} loads something external"


def test_logged_in_pages_are_not_cached(client, auth, world):
    auth.login_customer()
    assert client.get("/orders").headers["Cache-Control"] == "no-store"


def test_static_files_have_content_versioned_urls_cached_for_a_year(client, world):
    page = client.get("/").get_data(as_text=True)
    url = re.search(r'href="(/static/style\.css\?v=[0-9a-f]{12})"', page).group(1)
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "immutable" not in client.get("/static/style.css").headers.get("Cache-Control", "")


def test_robots_txt_opens_the_catalogue_and_closes_accounts(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "Disallow: /dashboard" in text and "Disallow: /account" in text and "Allow: /" in text


def test_a_405_says_which_methods_are_allowed(client):
    response = client.delete("/products")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert "not allowed" in response.get_data(as_text=True).lower() or response.mimetype == "text/html"


def test_a_permissions_policy_turns_off_what_the_site_never_uses(client):
    policy = client.get("/").headers["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in policy


# --- Control characters -------------------------------------------------------

CONTROL_MESSAGE = "Remove the control characters (such as NUL, a tab or a line separator) from {}."


@pytest.mark.parametrize("bad", ["Ada\x00", "Ada\tLovelace", "Ada\x1b[31m", "Ada\nLovelace", "Ada\x7f", "Ada\x85Lovelace",
                                 "Eve\u2028Lovelace", "Eve\u2029Lovelace", "Eve\u202eecalevoL", "Eve\u2066x\u2069",
                                 "Eve\ufeff", "Eve\u200bLovelace"])
def test_control_characters_in_a_signup_name_are_refused_with_a_message(client, db, bad):
    response = client.post("/signup/customer", data={"name": bad, "email": "ada@example.com",
                                                     "password": "s3cret-pass", "confirm": "s3cret-pass"})
    assert response.status_code == 400
    assert CONTROL_MESSAGE.format("first name") in response.get_data(as_text=True)
    assert db.value("SELECT COUNT(*) FROM customer") == 0


def test_control_characters_in_an_account_name_are_refused_and_nothing_is_saved(client, auth, db, world):
    auth.login_customer()
    with db.unchanged():
        response = client.post("/account", data={"action": "name", "name": "Jane\x00Doe"})
        assert response.status_code == 400 and CONTROL_MESSAGE.format("first name") in response.get_data(as_text=True)


def test_a_description_keeps_its_line_breaks_but_not_other_controls(client, auth, db, world):
    auth.login_producer()
    data = {"name": "Rye loaf", "price": "4.50", "quantity_available": "3", "reorder_threshold": "0",
            "category": "Bakery", "unit": "each"}
    refused = client.post("/dashboard/products/new", data={**data, "description": "Dense\x00dark"})
    assert refused.status_code == 400 and CONTROL_MESSAGE.format("description") in refused.get_data(as_text=True)
    assert db.value("SELECT COUNT(*) FROM product WHERE name = 'Rye loaf'") == 0
    for hidden in ("Dense\u2028dark", "Dense \u202edark"):
        refused = client.post("/dashboard/products/new", data={**data, "description": hidden})
        assert refused.status_code == 400 and CONTROL_MESSAGE.format("description") in refused.get_data(as_text=True)
    saved = client.post("/dashboard/products/new", data={**data, "description": "Dense.\r\nDark.\tSour."})
    assert saved.status_code == 302
    assert db.value("SELECT description FROM product WHERE name = 'Rye loaf'") == "Dense.\r\nDark.\tSour."


@pytest.mark.parametrize("name", ["Zoë Ångström", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
                                  "Family \U0001F468\u200d\U0001F469\u200d\U0001F467",
                                  "Welsh \U0001F3F4\U000E0067\U000E0062\U000E0077\U000E006C\U000E0073\U000E007F"])
def test_names_that_need_joiners_or_accents_are_kept(client, db, name):
    response = client.post("/signup/customer", data={"name": name, "email": "ada@example.com",
                                                     "password": "s3cret-pass", "confirm": "s3cret-pass"})
    assert response.status_code == 302
    assert db.value("SELECT first_name FROM customer") == name


def test_a_line_separator_in_a_delivery_address_or_postcode_is_refused_at_checkout(client, auth, db, world):
    auth.login_customer()
    db.add_to_cart(world.customer, world.product, 1)
    with db.unchanged():
        response = client.post("/checkout", data=world.choose("delivery", postcode="BS1\u2028 4DJ"))
        assert response.status_code == 400 and CONTROL_MESSAGE.format("postcode") in response.get_data(as_text=True)
        response = client.post("/checkout", data=world.choose("delivery", delivery_address="12 Orchard Row\u202e"))
        assert response.status_code == 400
        assert CONTROL_MESSAGE.format("delivery address") in response.get_data(as_text=True)
