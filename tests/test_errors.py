"""CSRF refusals, error pages, the database being down, and the start-up database check."""
import os
import re
import subprocess
import sys
import time

import pytest
from werkzeug.exceptions import InternalServerError

from app import http_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def token_from(client, path):
    """The CSRF token from the first form on the page at path."""
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


@pytest.mark.parametrize("path, data", [
    ("/dashboard/update-stock", lambda w: {"product_id": w.product, "quantity": 0}),
    ("/dashboard/update-order-status", lambda w: {"order_id": w.order, "status": "confirmed"}),
    ("/logout", lambda w: {}),
])
def test_post_without_csrf_token_is_400_and_changes_nothing(app, client, auth, db, world, path, data):
    auth.login_producer()
    app.config["WTF_CSRF_ENABLED"] = True
    with db.unchanged():
        response = client.post(path, data=data(world))
        assert response.status_code == 400
        assert "security token" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert session["role"] == "producer", "a logout without a token does not log out"


def test_forms_work_with_csrf_on_when_the_token_is_sent(app, client, db, world):
    app.config["WTF_CSRF_ENABLED"] = True
    token = token_from(client, "/login/producer")
    response = client.post("/login/producer", data={"email": "farm@example.com", "password": "correct horse 42",
                                                    "csrf_token": token})
    assert response.status_code == 302
    token = token_from(client, "/dashboard")
    response = client.post("/dashboard/update-stock",
                           data={"product_id": world.product, "quantity": 7, "csrf_token": token})
    assert response.status_code == 302
    assert db.stock(world.product) == 7


def test_signup_without_csrf_token_creates_nothing(app, client, db):
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/signup/customer", data={"name": "Eve", "email": "eve@example.com",
                                                     "password": "password123", "confirm": "password123"})
    assert response.status_code == 400
    assert db.value("SELECT COUNT(*) FROM customer") == 0


@pytest.mark.parametrize("method, path", [("get", "/"), ("get", "/products"), ("get", "/dashboard"),
                                          ("post", "/login/customer")])
def test_database_down_gives_a_503_page_without_a_stack_trace(app, client, auth, world, method, path, caplog):
    auth.login_producer()
    app.config.update(MYSQL_HOST="localhost", MYSQL_UNIX_SOCKET="/nonexistent/mysql.sock")
    response = getattr(client, method)(path, data={"email": "jane@example.com", "password": "x"})
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "temporarily unavailable" in page
    assert "Traceback" not in page and "OperationalError" not in page
    assert response.headers["Retry-After"] == "30"
    assert "Database unavailable" in caplog.text


def test_500_page_is_styled_and_hides_details(app):
    with app.test_request_context("/"):
        response = http_error(InternalServerError())
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong" in page and "<nav" in page


def run_flask(args, env_changes, extra_path=None):
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if extra_path:
        env["PYTHONPATH"] = extra_path
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_check_db_passes_when_the_database_is_reachable(test_database):
    result = run_flask(["check-db"], {"MYSQL_DB": test_database})
    assert result.returncode == 0
    assert "reachable" in result.stdout


@pytest.mark.parametrize("env, setting", [
    ({"MYSQL_HOST": "localhost", "MYSQL_UNIX_SOCKET": "/nonexistent/mysql.sock"}, "MYSQL_UNIX_SOCKET"),
    ({"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "1", "MYSQL_UNIX_SOCKET": None}, "MYSQL_HOST:MYSQL_PORT"),
    ({"MYSQL_USER": "noeari_no_such_user", "MYSQL_PASSWORD": "wrong"}, "MYSQL_USER and MYSQL_PASSWORD"),
    ({"MYSQL_DB": "noeari_no_such_database"}, "fix MYSQL_DB"),
])
def test_check_db_names_the_setting_to_fix(env, setting):
    result = run_flask(["check-db"], env)
    assert result.returncode != 0
    assert setting in result.stderr
    assert "Traceback" not in result.stderr


def test_check_db_reports_a_missing_driver(tmp_path):
    fake = tmp_path / "MySQLdb"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named MySQLdb._mysql')\n")
    result = run_flask(["check-db"], {}, extra_path=str(tmp_path))
    assert result.returncode != 0
    assert "MySQL driver is missing" in result.stderr
    assert "mysqlclient" in result.stderr


def test_gunicorn_start_up_log_names_the_setting_to_fix():
    env = dict(os.environ, MYSQL_HOST="localhost", MYSQL_UNIX_SOCKET="/nonexistent/mysql.sock",
               BIND="127.0.0.1:0", WEB_CONCURRENCY="1")
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-c", "gunicorn.conf.py",
                               "app:app"], cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              text=True)
    try:
        deadline = time.monotonic() + 30
        log = ""
        while time.monotonic() < deadline and "Database check" not in log:
            log += server.stderr.readline()
    finally:
        # A worker forked as SIGTERM arrives may miss it; gunicorn then waits its graceful timeout (30 s).
        server.terminate()
        try:
            server.wait(timeout=45)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert "Database check failed" in log
    assert "MYSQL_UNIX_SOCKET" in log


def test_the_gunicorn_master_never_imports_the_app_so_a_reload_serves_new_code(test_database, tmp_path):
    script = ("import runpy, sys, types\n"
              "hooks = runpy.run_path('gunicorn.conf.py')\n"
              "logged = []\n"
              "log = types.SimpleNamespace(info=lambda *a: logged.append(a), error=lambda *a: logged.append(a))\n"
              "hooks['when_ready'](types.SimpleNamespace(log=log, pid=7, num_workers=3))\n"
              "print(logged[0][0], 'app' in sys.modules, 'flask' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, MYSQL_DB=test_database, RUN_DIR=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Database", "check", "passed.", "False", "False"]
    assert (tmp_path / "ready" / "7.expected").read_text() == "3", "how many workers a reload waits for"
