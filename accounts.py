"""Accounts of the three roles: their statements, passwords, reset links, and what an operator does to an
account, each kept in the audit. It knows nothing of requests: the acting operator comes in as
operator_id, and an account that is not there is None or AccountNotFound."""
import functools
import hashlib
import re
import secrets

import bcrypt
from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

import catalogue
import mail
import search
from db import execute, query, transactional


class AccountNotFound(Exception):
    """No such account of that kind."""


BLOCKED_STATES = {"suspended", "disabled"}  # an operator suspends customers and producers, disables operators


def account_sql(table, key, name, status, badges=""):
    """The statements one role's accounts need; table, key, name and badges are this module's constants."""
    columns = f"{key} AS id, {name} AS name, email, password_hash, session_version, {status} AS status"
    return {
        "by_id": f"SELECT {key} AS id, {name} AS name, email, session_version, {status} AS status{badges}"
                 f" FROM {table} a WHERE {key} = %s",
        "credentials": f"SELECT {columns} FROM {table} WHERE {key} = %s",
        "by_email": f"SELECT {columns} FROM {table} WHERE email = %s",
        "set_name": f"UPDATE {table} SET {name} = %s WHERE {key} = %s",
        "set_email": f"UPDATE {table} SET email = %s, session_version = session_version + 1 WHERE {key} = %s",
        "set_password": f"UPDATE {table} SET password_hash = %s, session_version = session_version + 1"
                        f" WHERE {key} = %s AND password_hash = %s",
        "end_sessions": f"UPDATE {table} SET session_version = session_version + 1 WHERE {key} = %s",
    }


ACCOUNT_SQL = {
    "customer": account_sql(
        "customer", "customer_id", "first_name", "status",
        ", reminders, (SELECT COALESCE(SUM(quantity), 0) FROM cart_item ci WHERE ci.customer_id = a.customer_id)"
        " AS cart_count"),
    "producer": account_sql(
        "producer", "producer_id", "business_name", "status",
        ", (SELECT COUNT(*) FROM product p JOIN stock s ON s.product_id = p.product_id"
        f" WHERE p.producer_id = a.producer_id AND {catalogue.RESTOCK_CONDITION}) AS restock_count"),
    "operator": account_sql("operator", "operator_id", "name", "status"),
}
SIGNUP_SQL = {
    "customer": "INSERT INTO customer (first_name, email, password_hash, status) VALUES (%s, %s, %s, %s)",
    "producer": "INSERT INTO producer (business_name, email, password_hash, status) VALUES (%s, %s, %s, %s)",
}


def hash_password(password):
    """A bcrypt hash of the password at the configured cost."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(current_app.config["BCRYPT_ROUNDS"])).decode()


@functools.lru_cache(maxsize=4)
def decoy_hash(rounds):
    """A hash to check unknown emails against, so they take as long as known ones."""
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds))


def password_matches(password, password_hash):
    """True when password matches password_hash; a missing hash still costs one bcrypt check."""
    candidate = password.encode("utf-8")
    if len(candidate) > 72 or b"\0" in candidate:
        candidate = b"-"
    stored = password_hash.encode() if password_hash else decoy_hash(current_app.config["BCRYPT_ROUNDS"])
    return bcrypt.checkpw(candidate, stored) and password_hash is not None


def reset_serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def reset_fingerprint(account):
    """A short digest of the password hash and the email: it ties a reset token to the password it replaces
    and to the address it was sent to, so a new password or a new email ends every link sent before."""
    return hashlib.sha256(f"{account['password_hash']}\n{account['email']}".encode()).hexdigest()[:32]


def account_for_reset_token(token):
    """(role, account) for a valid, unexpired, unused reset token; else None."""
    try:
        data = reset_serializer().loads(token, max_age=current_app.config["RESET_TOKEN_MAX_AGE"])
        role, account_id, fingerprint = data["role"], int(data["id"]), data["fp"]
    except (BadData, KeyError, TypeError, ValueError):
        return None
    if role not in ACCOUNT_SQL:
        return None
    account = query(ACCOUNT_SQL[role]["credentials"], (account_id,), one=True)
    if account is None or not secrets.compare_digest(reset_fingerprint(account), str(fingerprint)):
        return None
    return role, account


@transactional
def set_password_by_reset(role, account, new_hash):
    """Set the new password and forgive every failed guess at the email; False when the link was used already."""
    # Matching the old hash makes the token single-use even when two requests race.
    if execute(ACCOUNT_SQL[role]["set_password"], (new_hash, account["id"], account["password_hash"])).rowcount != 1:
        return False
    execute("DELETE FROM login_failure WHERE email = %s", (account["email"],))
    return True


@transactional
def rename_account(role, account_id, name):
    """A new name; a producer's products are found by it, so their stems change with it."""
    save_account_change(role, account_id, "name", ACCOUNT_SQL[role]["set_name"], (name, account_id))
    if role == "producer":
        execute("UPDATE product SET search_producer = %s WHERE producer_id = %s", (search.stems(name), account_id))


@transactional
def save_account_change(role, account_id, what, statement, args):
    """One change to an account; an operator's own is kept in the audit, in the same transaction."""
    done = execute(statement, args)
    if role == "operator" and done.rowcount:
        audit(account_id, f"change_{what}", "operator", account_id)
    return done


# What an operator may do to an account: from which states, and the state it leaves it in.
ACCOUNT_ACTIONS = {
    "producer": {"approve": ({"pending"}, "approved"), "suspend": ({"pending", "approved"}, "suspended"),
                 "reinstate": ({"suspended"}, "approved")},
    "customer": {"suspend": ({"active"}, "suspended"), "reinstate": ({"suspended"}, "active")},
    "operator": {"disable": ({"active"}, "disabled"), "enable": ({"disabled"}, "active")},
}
ACCOUNT_TABLES = {"producer": ("producer", "producer_id", "business_name"),
                  "customer": ("customer", "customer_id", "first_name"),
                  "operator": ("operator", "operator_id", "name")}
# How the audit tells each action, in the past tense.
AUDIT_LABELS = {"approve": "Approved", "suspend": "Suspended", "reinstate": "Reinstated", "disable": "Disabled",
                "enable": "Enabled", "retry": "Sent again", "change_name": "Changed their name",
                "change_email": "Changed their email", "change_password": "Changed their password"}


class LastOperator(Exception):
    """Disabling this operator would leave nobody to run the co-op."""


def is_only_active_operator(operator_id, lock=False):
    """Whether operator_id is the one active operator. lock=True locks every active operator's row, so two
    operators disabling each other at once are taken one after the other."""
    active = query("SELECT operator_id FROM operator WHERE status = 'active'" + (" FOR UPDATE" if lock else ""))
    return [row["operator_id"] for row in active] == [operator_id]


def operators():
    """Every operator with their state, by name."""
    return query("SELECT operator_id, name, email, status, created_at FROM operator ORDER BY name, operator_id")


def audit(operator_id, action, target_type, target_id, note=""):
    """Keep an operator's action in the audit, in the transaction of the change; return its id."""
    return execute("INSERT INTO operator_audit (operator_id, action, target_type, target_id, note)"
                   " VALUES (%s, %s, %s, %s, %s)", (operator_id, action, target_type, target_id, note)).lastrowid


@transactional
def change_account_state(operator_id, kind, account_id, action, note):
    """As operator_id, move an account to the action's state, with an audit row and, for a producer, an email,
    all in one unit; return the account as it was and whether it moved, or raise AccountNotFound. Suspending
    or disabling ends its sessions; disabling the last active operator raises LastOperator."""
    table, key, name = ACCOUNT_TABLES[kind]
    if kind == "operator" and action == "disable":
        if is_only_active_operator(account_id, lock=True):
            raise LastOperator()
    account = query(f"SELECT {key} AS id, {name} AS name, email, status FROM {table} WHERE {key} = %s FOR UPDATE",
                    (account_id,), one=True)
    if account is None:
        raise AccountNotFound(kind, account_id)
    allowed, new_status = ACCOUNT_ACTIONS[kind][action]
    if account["status"] not in allowed:
        return account, False
    execute(f"UPDATE {table} SET status = %s, session_version = session_version + %s WHERE {key} = %s",
            (new_status, 1 if new_status in BLOCKED_STATES else 0, account_id))
    audit_id = audit(operator_id, action, kind, account_id, note)
    if kind == "producer":
        mail.send("producer_state", f"producer-state:{account_id}:{audit_id}", account["email"],
                  {"approve": "Your noeari shop is approved", "suspend": "Your noeari shop is suspended",
                   "reinstate": "Your noeari shop is reinstated"}[action],
                  business_name=account["name"], action=action, note=note)
    return account, True


def audit_of(kind, account_id):
    return query("SELECT a.action, a.note, a.created_at, op.name AS operator FROM operator_audit a"
                 " JOIN operator op ON op.operator_id = a.operator_id"
                 " WHERE a.target_type = %s AND a.target_id = %s ORDER BY a.audit_id DESC", (kind, account_id))


def recent_audit(limit=50):
    """The newest actions of every operator, on any account or email."""
    return query("SELECT a.action, a.target_type, a.target_id, a.note, a.created_at, op.name AS operator"
                 " FROM operator_audit a JOIN operator op ON op.operator_id = a.operator_id"
                 " ORDER BY a.audit_id DESC LIMIT %s", (limit,))


@transactional
def retry_email(operator_id, email_id):
    """Make a failed email due again, kept in the audit; False when it had not failed."""
    if not mail.retry(email_id):
        return False
    audit(operator_id, "retry", "email", email_id)
    return True


# --- The operator's lists ---------------------------------------------------

PRODUCER_STATES = {"pending": "Awaiting approval", "approved": "Approved", "suspended": "Suspended"}
ACCOUNT_STATES = {"producer": PRODUCER_STATES, "customer": {"active": "Active", "suspended": "Suspended"},
                  "operator": {"active": "Active", "disabled": "Disabled"}}
ACCOUNT_SUMMARY_SQL = {
    "producer": "SELECT producer_id AS id, business_name AS name, email, town, phone, public_email, status, date_joined,"
                " (SELECT COUNT(*) FROM product WHERE producer_id = %(id)s AND is_archived = 0) AS products,"
                " (SELECT COALESCE(SUM(n), 0) FROM order_count WHERE producer_id = %(id)s) AS orders"
                " FROM producer WHERE producer_id = %(id)s",
    "customer": "SELECT customer_id AS id, first_name AS name, email, status, date_joined, NULL AS products,"
                " (SELECT COUNT(*) FROM orders WHERE customer_id = %(id)s) AS orders"
                " FROM customer WHERE customer_id = %(id)s",
    "operator": "SELECT operator_id AS id, name, email, status, created_at AS date_joined, NULL AS products,"
                " NULL AS orders FROM operator WHERE operator_id = %(id)s",
}


def account_summary(kind, account_id):
    """Who an account is, its state, and how much it has done, for the operator; None when there is none."""
    return query(ACCOUNT_SUMMARY_SQL[kind], {"id": account_id}, one=True)


def marketplace_figures():
    """The approved producers and active customers counted, and the producers awaiting approval, oldest first."""
    figures = query(
        "SELECT (SELECT COUNT(*) FROM producer WHERE status = 'approved') AS producers,"
        " (SELECT COUNT(*) FROM customer WHERE status = 'active') AS customers", one=True)
    pending = query("SELECT producer_id, business_name, email, date_joined FROM producer WHERE status = 'pending'"
                    " ORDER BY date_joined, producer_id LIMIT 50")
    return figures, pending


def producer_page(state, page, per_page):
    """A page of every producer (or those in one state) by name, and how many there are."""
    where, args = ("WHERE status = %s", [state]) if state else ("", [])
    total = query(f"SELECT COUNT(*) AS n FROM producer {where}", args, one=True)["n"]
    rows = query(f"SELECT producer_id, business_name, email, town, status, date_joined FROM producer {where}"
                 " ORDER BY business_name, producer_id LIMIT %s OFFSET %s", args + [per_page, (page - 1) * per_page])
    return rows, total


def producer_names(limit=500):
    return query("SELECT producer_id, business_name FROM producer ORDER BY business_name LIMIT %s", (limit,))


def customer_page(text, page, per_page):
    """A page of the customers whose email or first name holds text (every customer when it is empty), by
    email, and how many there are."""
    where, args = "", []
    if text:
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
        where, args = "WHERE email LIKE %s OR first_name LIKE %s", [pattern, pattern]
    total = query(f"SELECT COUNT(*) AS n FROM customer {where}", args, one=True)["n"]
    rows = query(f"SELECT customer_id, first_name, email, status, date_joined FROM customer {where}"
                 " ORDER BY email LIMIT %s OFFSET %s", args + [per_page, (page - 1) * per_page])
    return rows, total
