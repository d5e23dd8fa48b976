"""Bearer tokens for the JSON API: issued for an account after its password, kept only as their SHA-256,
named, expiring, and revoked by their owner, by a password change or by a suspension.

Request-free: the acting account comes in as an argument.
"""
import datetime
import hashlib
import secrets
import threading

from db import execute, query

PREFIX = "noeari_"


def digest(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(role, account_id, name, days, now):
    """A new token for the account, valid for days from now: (the token, shown once; its row)."""
    token = PREFIX + secrets.token_urlsafe(32)
    expires_at = (now + datetime.timedelta(days=days)).replace(microsecond=0, tzinfo=None)
    token_id = execute("INSERT INTO api_token (role, account_id, name, token_hash, expires_at)"
                       " VALUES (%s, %s, %s, %s, %s)", (role, account_id, name, digest(token), expires_at)).lastrowid
    return token, own_token(role, account_id, token_id)


TOKEN_COLUMNS = "token_id, name, created_at, expires_at, last_used_at, revoked_at"


def holder(token, now):
    """(role, account_id, token_id) of a live token, or None: unknown, expired or revoked."""
    if not isinstance(token, str) or not token.startswith(PREFIX) or len(token) > 100:
        return None
    found = query("SELECT token_id, role, account_id, last_used_at FROM api_token WHERE token_hash = %s"
                  " AND revoked_at IS NULL AND expires_at > %s", (digest(token), now.replace(tzinfo=None)), one=True)
    if found is None:
        return None
    # The last use is kept to the hour: a token used all day costs one write an hour, not one a request.
    if found["last_used_at"] is None or now.replace(tzinfo=None) - found["last_used_at"] > datetime.timedelta(hours=1):
        execute("UPDATE api_token SET last_used_at = %s WHERE token_id = %s",
                (now.replace(tzinfo=None, microsecond=0), found["token_id"]))
    return found["role"], found["account_id"], found["token_id"]


def own_tokens(role, account_id):
    """The account's tokens not yet revoked, newest first."""
    return query(f"SELECT {TOKEN_COLUMNS} FROM api_token WHERE role = %s AND account_id = %s AND revoked_at IS NULL"
                 " ORDER BY token_id DESC", (role, account_id))


def own_token(role, account_id, token_id):
    return query(f"SELECT {TOKEN_COLUMNS} FROM api_token WHERE role = %s AND account_id = %s AND token_id = %s",
                 (role, account_id, token_id), one=True)


def revoke(role, account_id, token_id):
    """Revoke one of the account's tokens; False when it has no such live token."""
    return execute("UPDATE api_token SET revoked_at = UTC_TIMESTAMP() WHERE role = %s AND account_id = %s"
                   " AND token_id = %s AND revoked_at IS NULL", (role, account_id, token_id)).rowcount == 1


def revoke_all(role, account_id):
    """Revoke every token of the account: its password changed, or it was suspended."""
    execute("UPDATE api_token SET revoked_at = UTC_TIMESTAMP() WHERE role = %s AND account_id = %s"
            " AND revoked_at IS NULL", (role, account_id))


def count_requests(token_id, window, requests):
    """Add requests by the token in the minute starting at window; how many it has made in that minute, these
    included. One statement: the row's old window decides, in the update, whether the count goes on or starts
    again, and LAST_INSERT_ID carries the count back with the statement's answer."""
    done = execute("INSERT INTO api_rate (token_id, window_start, requests) VALUES (%s, %s, %s)"
                   " ON DUPLICATE KEY UPDATE requests = LAST_INSERT_ID(IF(window_start = VALUES(window_start),"
                   " requests + VALUES(requests), VALUES(requests))), window_start = VALUES(window_start)",
                   (token_id, window, requests))
    return done.lastrowid or requests


class RateMeter:
    """Each token's requests in the current minute, counted in the database so every process and server sees
    them, but written a batch at a time: a process writes a token's first request of each minute, then every
    batch-th. Within a process the count is exact; across processes a token can go at most batch - 1
    requests per process over its limit before the others see them. Thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}  # token_id -> [window, known total, requests not yet written]

    def count(self, token_id, now, batch):
        """Count one request; how many the token has made in now's minute, as far as this process knows."""
        window = now.replace(second=0, microsecond=0, tzinfo=None)
        with self.lock:
            state = self.seen.get(token_id)
            if state is None or state[0] != window:
                if len(self.seen) > 10_000:
                    self.seen = {key: value for key, value in self.seen.items() if value[0] == window}
                state = self.seen[token_id] = [window, None, 0]
            state[2] += 1
            if state[1] is not None and state[2] < batch:
                return state[1] + state[2]
            adding, state[2] = state[2], 0
        total = count_requests(token_id, window, adding)
        with self.lock:
            if state[0] == window:
                state[1] = total
            return total + state[2]
