"""Accounts of the three roles: their statements, passwords, reset links, and what an operator does to an
account, each kept in the audit. It knows nothing of requests: the acting operator comes in as
operator_id, and an account that is not there is None or AccountNotFound."""
import functools
import hashlib
import re
import secrets
from collections import namedtuple

import bcrypt
from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

import catalogue
import mail
import search
import tokens
from db import execute, query, transactional


class AccountNotFound(Exception):
    """No such account of that kind."""


BLOCKED_STATES = {"suspended", "disabled"}  # an operator suspends customers and producers, disables operators


class Role(namedtuple("Role", "table key name badges states actions summary")):
    """One kind of account: its table, key and name columns; what the header shows of it, and a producer's
    version (badges); its states with their labels; what an operator may do to it (from which states, and the
    state it leaves it in); and what the operator's page of it counts (summary)."""


# The one role table: every statement and rule below that differs by role reads it.
ROLES = {
    "customer": Role(
        "customer", "customer_id", "first_name",
        # Items in the cart, as orders count them: a line sold by measure (0.75 kg of cheese) is one item.
        badges=", reminders, (SELECT CAST(COALESCE(SUM(IF(p.sold_by = 'measure', 1, ci.quantity)), 0) AS UNSIGNED)"
               " FROM cart_item ci JOIN product p ON p.product_id = ci.product_id"
               " WHERE ci.customer_id = a.customer_id) AS cart_count",
        states={"active": "Active", "suspended": "Suspended"},
        actions={"suspend": ({"active"}, "suspended"), "reinstate": ({"suspended"}, "active")},
        summary="date_joined, NULL AS products,"
                " (SELECT COUNT(*) FROM orders WHERE customer_id = %(id)s) AS orders"),
    "producer": Role(
        "producer", "producer_id", "business_name",
        badges=f", (SELECT COUNT(*) FROM {catalogue.RESTOCK_ROWS.format(producer='a.producer_id')}) AS restock_count,"
               f" {catalogue.PRODUCER_VERSION.format(producer='a.producer_id')} AS version",
        states={"pending": "Awaiting approval", "approved": "Approved", "suspended": "Suspended"},
        actions={"approve": ({"pending"}, "approved"), "suspend": ({"pending", "approved"}, "suspended"),
                 "reinstate": ({"suspended"}, "approved")},
        summary="town, phone, public_email, date_joined, fee_percent,"
                " (SELECT COUNT(*) FROM product WHERE producer_id = %(id)s AND is_archived = 0) AS products,"
                " (SELECT COALESCE(SUM(n), 0) FROM order_count WHERE producer_id = %(id)s) AS orders"),
    "operator": Role(
        "operator", "operator_id", "name", badges="",
        states={"active": "Active", "disabled": "Disabled"},
        actions={"disable": ({"active"}, "disabled"), "enable": ({"disabled"}, "active")},
        summary="created_at AS date_joined, NULL AS products, NULL AS orders"),
}
SIGNUP_ROLES = ("customer", "producer")  # operators are made by an operator, or by `flask create-operator`


def account_sql(role):
    """The statements one role's accounts need, built from its row of ROLES (constants, never user text)."""
    table, key, name = role.table, role.key, role.name
    columns = f"{key} AS id, {name} AS name, email, password_hash, session_version, status"
    return {
        "by_id": f"SELECT {key} AS id, {name} AS name, email, session_version, status{role.badges}"
                 f" FROM {table} a WHERE {key} = %s",
        "credentials": f"SELECT {columns} FROM {table} WHERE {key} = %s",
        "by_email": f"SELECT {columns} FROM {table} WHERE email = %s",
        "set_name": f"UPDATE {table} SET {name} = %s WHERE {key} = %s",
        "set_email": f"UPDATE {table} SET email = %s, session_version = session_version + 1 WHERE {key} = %s",
        "set_password": f"UPDATE {table} SET password_hash = %s, session_version = session_version + 1"
                        f" WHERE {key} = %s AND password_hash = %s",
        "end_sessions": f"UPDATE {table} SET session_version = session_version + 1 WHERE {key} = %s",
        "create": f"INSERT INTO {table} ({name}, email, password_hash, status) VALUES (%s, %s, %s, %s)",
        "lock": f"SELECT {key} AS id, {name} AS name, email, status FROM {table} WHERE {key} = %s FOR UPDATE",
        "set_status": f"UPDATE {table} SET status = %s, session_version = session_version + %s WHERE {key} = %s",
        "summary": f"SELECT {key} AS id, {name} AS name, email, status, {role.summary} FROM {table}"
                   f" WHERE {key} = %(id)s",
    }


ACCOUNT_SQL = {name: account_sql(role) for name, role in ROLES.items()}


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
    tokens.revoke_all(role, account["id"])
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


def account_by_id(role, account_id):
    """The account a session names, with what the header shows of it; None when there is none."""
    return query(ACCOUNT_SQL[role]["by_id"], (account_id,), one=True)


def account_by_email(role, email):
    return query(ACCOUNT_SQL[role]["by_email"], (email,), one=True)


def credentials(role, account_id):
    """An account's email, password hash and session version, to check a password against."""
    return query(ACCOUNT_SQL[role]["credentials"], (account_id,), one=True)


@transactional
def create_account(role, name, email, password_hash, status):
    """A new customer or producer; its id. A producer who awaits approval is announced to every active
    operator, in the same transaction. An email in use already raises db.IntegrityError."""
    account_id = execute(ACCOUNT_SQL[role]["create"], (name, email, password_hash, status)).lastrowid
    if role == "producer" and status == "pending":
        for operator in query("SELECT operator_id, email FROM operator WHERE status = 'active'"):
            mail.send("producer_signup", f"producer-signup:{account_id}:{operator['operator_id']}", operator["email"],
                      f"{name} asks to sell on noeari", business_name=name, email=email, producer_id=account_id)
    return account_id


def create_operator(name, email, password_hash):
    return execute(ACCOUNT_SQL["operator"]["create"], (name, email, password_hash, "active")).lastrowid


def end_sessions(role, account_id):
    """A new session version makes every copy of the account's session cookies worthless."""
    execute(ACCOUNT_SQL[role]["end_sessions"], (account_id,))


def change_email(role, account_id, email):
    """A new email, which ends every session but the one the caller carries on with the new version."""
    save_account_change(role, account_id, "email", ACCOUNT_SQL[role]["set_email"], (email, account_id))


@transactional
def change_password(role, account_id, new_hash, old_hash):
    """A new password, which revokes the account's API tokens too."""
    if save_account_change(role, account_id, "password", ACCOUNT_SQL[role]["set_password"],
                           (new_hash, account_id, old_hash)).rowcount:
        tokens.revoke_all(role, account_id)


def set_reminders(customer_id, wanted):
    execute("UPDATE customer SET reminders = %s WHERE customer_id = %s", (int(wanted), customer_id))


@transactional
def change_profile(role, account_id, name=None, reminders=None):
    """A new name and (a customer's) reminders, either or both, together."""
    if name is not None:
        rename_account(role, account_id, name)
    if reminders is not None:
        set_reminders(account_id, reminders)


# --- Throttles --------------------------------------------------------------

def login_failure_counts(email, client, ip):
    """Failed logins at email from client and from ip (untrusted) in the last LOGIN_WINDOW_SECONDS, and at
    email from anywhere in the last day: by_client, by_address, by_email."""
    window = current_app.config["LOGIN_WINDOW_SECONDS"]
    return query(
        "SELECT (SELECT COUNT(*) FROM login_failure WHERE email = %s AND client = %s"
        "        AND failed_at > UTC_TIMESTAMP(6) - INTERVAL %s SECOND) AS by_client,"
        "       (SELECT COUNT(*) FROM login_failure WHERE ip = %s AND trusted = 0"
        "        AND failed_at > UTC_TIMESTAMP(6) - INTERVAL %s SECOND) AS by_address,"
        "       (SELECT COUNT(*) FROM login_failure WHERE email = %s"
        "        AND failed_at > UTC_TIMESTAMP(6) - INTERVAL 1 DAY) AS by_email",
        (email, client, window, ip, window, email), one=True)


@transactional
def record_login_failure(email, ip, client, trusted):
    execute("INSERT INTO login_failure (email, ip, client, trusted, failed_at) VALUES (%s, %s, %s, %s,"
            " UTC_TIMESTAMP(6))", (email, ip, client, int(trusted)))
    execute("DELETE FROM login_failure WHERE failed_at < UTC_TIMESTAMP(6) - INTERVAL 1 DAY LIMIT 100")


def forgive_login_failures(email, client):
    execute("DELETE FROM login_failure WHERE email = %s AND client = %s", (email, client))


HOURLY_COUNTS = {  # the rows each hourly limit counts: table, the column that names who, and when
    "signup_client": ("signup_attempt", "client", "attempted_at"),
    "reset_email": ("password_reset_request", "email", "requested_at"),
    "reset_client": ("password_reset_request", "client", "requested_at"),
}


def over_hourly_limit(count, value, limit, locking=False):
    """Whether the last hour holds limit or more rows of HOURLY_COUNTS[count] for value. A locking count
    makes a second request for the same value wait here, so two at once cannot both slip under the limit."""
    table, who, when = HOURLY_COUNTS[count]
    found = query(f"SELECT COUNT(*) AS n FROM {table} WHERE {who} = %s"
                  f" AND {when} > UTC_TIMESTAMP(6) - INTERVAL 1 HOUR" + (" FOR UPDATE" if locking else ""),
                  (value,), one=True)
    return found["n"] >= limit


def record_signup_attempt(client):
    execute("INSERT INTO signup_attempt (client, attempted_at) VALUES (%s, UTC_TIMESTAMP(6))", (client,))


@transactional
def request_password_reset(role, email, client):
    """Record a reset request unless this email (RESET_EMAIL_LIMIT) or this client (RESET_CLIENT_LIMIT) has
    asked too often in the last hour; return whether it was recorded. The worker sends the link."""
    config = current_app.config
    if (over_hourly_limit("reset_email", email, config["RESET_EMAIL_LIMIT"], locking=True)
            or over_hourly_limit("reset_client", client, config["RESET_CLIENT_LIMIT"])):
        return False
    execute("INSERT INTO password_reset_request (role, email, client, requested_at)"
            " VALUES (%s, %s, %s, UTC_TIMESTAMP(6))", (role, email, client))
    return True


# --- The operator's actions -------------------------------------------------

# How the audit tells each action, in the past tense.
AUDIT_LABELS = {"approve": "Approved", "suspend": "Suspended", "reinstate": "Reinstated", "disable": "Disabled",
                "enable": "Enabled", "retry": "Sent again", "change_name": "Changed their name",
                "change_email": "Changed their email", "change_password": "Changed their password",
                "set_fee": "Set the co-op's fee"}


class LastOperator(Exception):
    """Disabling this operator would leave nobody to run the co-op."""


def is_only_active_operator(operator_id, lock=False):
    """Whether operator_id is the one active operator. lock=True locks every active operator's row, so two
    operators disabling each other at once are taken one after the other."""
    active = query("SELECT operator_id FROM operator WHERE status = 'active'" + (" FOR UPDATE" if lock else ""))
    return [row["operator_id"] for row in active] == [operator_id]


@transactional
def set_fee_percent(producer_id, percent, operator_id):
    """Set a producer's own co-op fee rate for their new orders (None: the co-op's rate), with the audit;
    False when there is no such producer."""
    if execute("UPDATE producer SET fee_percent = %s WHERE producer_id = %s", (percent, producer_id)).rowcount == 0 \
            and query("SELECT 1 AS found FROM producer WHERE producer_id = %s", (producer_id,), one=True) is None:
        return False
    audit(operator_id, "set_fee", "producer", producer_id,
          "the co-op's rate" if percent is None else f"{percent}% of goods")
    return True


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
    if kind == "operator" and action == "disable":
        if is_only_active_operator(account_id, lock=True):
            raise LastOperator()
    account = query(ACCOUNT_SQL[kind]["lock"], (account_id,), one=True)
    if account is None:
        raise AccountNotFound(kind, account_id)
    allowed, new_status = ROLES[kind].actions[action]
    if account["status"] not in allowed:
        return account, False
    execute(ACCOUNT_SQL[kind]["set_status"], (new_status, 1 if new_status in BLOCKED_STATES else 0, account_id))
    if new_status in BLOCKED_STATES:
        tokens.revoke_all(kind, account_id)
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

def account_summary(kind, account_id):
    """Who an account is, its state, and how much it has done, for the operator; None when there is none."""
    return query(ACCOUNT_SQL[kind]["summary"], {"id": account_id}, one=True)


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
