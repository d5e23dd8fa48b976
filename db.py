"""Database plumbing: one kept connection per thread, one query helper, one transaction idiom,
and the schema's life (build, migrate, seed) with its CLI commands. It knows nothing of requests."""
import functools
import os
import random
import re
import threading
import time
from collections import namedtuple
from contextlib import contextmanager

import click
from flask import current_app, g
from flask.cli import with_appcontext

try:
    import MySQLdb
    import MySQLdb.cursors
    from flask_mysqldb import MySQL as FlaskMySQL
except ImportError as exc:
    raise SystemExit(
        f"noeari cannot start: the MySQL driver is missing ({exc}).\n"
        "Install it with `make run` or `.venv/bin/pip install -r requirements.txt`; "
        "mysqlclient builds against the apt packages libmariadb-dev and pkg-config."
    ) from None

OperationalError = MySQLdb.OperationalError
IntegrityError = MySQLdb.IntegrityError


# --- Connections ------------------------------------------------------------

class TrackedCursor(MySQLdb.cursors.DictCursor):
    """Notes on its connection when a statement opens a transaction, so that the end of a request
    rolls back only a connection that needs it, rather than every connection every time."""

    def execute(self, query, args=None):
        if isinstance(query, str) and query.lstrip()[:16].upper().startswith(OPENS_TRANSACTION):
            self.connection.transaction_open = True
        return super().execute(query, args)


OPENS_TRANSACTION = ("START", "BEGIN", "LOCK", "SET AUTOCOMMIT")
GONE_AWAY = {2006, 2013}
# A dropped connection fails at once; one that fails only after this long met a stalled server, and a
# new connection would wait out its own timeout too.
STALLED_AFTER_SECONDS = 1


class MySQL(FlaskMySQL):
    """flask-mysqldb with its settings, keeping one connection per thread from request to request.

    A new connection costs more than a small page's queries. A kept connection used in the last
    MYSQL_PING_AFTER_SECONDS is used as it is: if the server dropped it meanwhile, the request's first
    statement fails at once and runs again on a new connection (`with_reconnect`). One idle for longer
    is pinged first. A transaction is never carried into the next request.
    MYSQL_REUSE_CONNECTIONS=0 gives a new connection per request.
    """

    SETTINGS = ("MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DB", "MYSQL_UNIX_SOCKET",
                "MYSQL_CONNECT_TIMEOUT", "MYSQL_READ_DEFAULT_FILE", "MYSQL_USE_UNICODE", "MYSQL_CHARSET",
                "MYSQL_SQL_MODE", "MYSQL_CURSORCLASS", "MYSQL_AUTOCOMMIT", "MYSQL_CUSTOM_OPTIONS")

    def __init__(self, app=None):
        self.kept = threading.local()
        super().__init__(app)

    @property
    def connect(self):
        conn = FlaskMySQL.connect.fget(self)
        conn.cursorclass, conn.transaction_open = TrackedCursor, False
        return conn

    @property
    def connection(self):
        conn = g.get("mysql_db")
        if conn is not None:
            return conn
        if not current_app.config["MYSQL_REUSE_CONNECTIONS"]:
            return super().connection
        g.mysql_db = self.kept_connection()
        return g.mysql_db

    def kept_connection(self):
        settings = tuple(current_app.config[key] for key in self.SETTINGS)
        conn = getattr(self.kept, "conn", None)
        if conn is not None and self.kept.settings == settings:
            if time.monotonic() - self.kept.last_used < current_app.config["MYSQL_PING_AFTER_SECONDS"]:
                g.mysql_unverified = True
                return conn
            started = time.monotonic()
            try:
                conn.ping()
                return conn
            except MySQLdb.Error:
                self.discard(conn)
                if time.monotonic() - started > STALLED_AFTER_SECONDS:
                    raise
        conn = self.connect
        self.kept.conn, self.kept.settings, self.kept.last_used = conn, settings, time.monotonic()
        return conn

    def discard(self, conn):
        self.kept.conn = None
        try:
            conn.close()
        except MySQLdb.Error:
            pass

    def teardown(self, exception):
        conn = g.pop("mysql_db", None)
        g.pop("mysql_unverified", None)
        if conn is None:
            return
        if conn is not getattr(self.kept, "conn", None):
            conn.close()
            return
        self.kept.last_used = time.monotonic()
        if getattr(conn, "transaction_open", False):
            try:
                conn.rollback()
                conn.transaction_open = False
            except MySQLdb.Error:
                self.discard(conn)


mysql = MySQL()


def init_app(app, after_load=(), after_seed=()):
    """Attach the connection to app and register the database commands, as flaskr's db.py does.

    after_load are the modules' back-fills, run after migrations and the demo data: what SQL files cannot
    write (search stems, photos moved in from files); after_seed, what only the demo data needs (its invoices).
    They are handed in, so this module imports none of
    the modules that build on it."""
    app.extensions["noeari_after_load"] = list(after_load)
    app.extensions["noeari_after_seed"] = list(after_seed)
    mysql.init_app(app)
    for command in (init_db_command, seed_db_command, migrate_command, check_db_command):
        app.cli.add_command(command)


def stream(sql, args=()):
    """Run one query on a connection of its own and yield its rows as tuples as the server sends
    them: memory stays flat, and the rows can be sent after the request's connection is closed."""
    conn = mysql.connect
    cur = conn.cursor(MySQLdb.cursors.SSCursor)
    try:
        cur.execute(sql, args)
    except BaseException:
        conn.close()
        raise

    def rows():
        try:
            yield from cur
        finally:
            conn.close()
    return rows()


# --- Queries and transactions -----------------------------------------------

Written = namedtuple("Written", "rowcount lastrowid")
# Lock wait timeout; deadlock, which is also how Galera reports a transaction that lost, at commit or
# before, to a conflicting one committed on another node.
RETRYABLE_ERRORS = {1205, 1213}
READ_AGAIN_ATTEMPTS = 10


class ReadAgain(Exception):
    """Raised by a unit of work when a row it read without locking has changed under it (stock sold since the
    cart was read): the transaction rolls back and runs again, its reads included, as after a deadlock."""


class Busy(Exception):
    """A unit of work kept colliding with others (deadlock or lock wait) and was given up; it changed nothing."""


def with_reconnect(run):
    """Run a request's statement, run(connection); when it is the first on a kept connection that was not
    pinged, and it fails at once because the server had dropped the connection, run it once more on a new one."""
    conn = mysql.connection
    unverified = g.pop("mysql_unverified", False)
    started = time.monotonic() if unverified else None
    try:
        return run(conn)
    except MySQLdb.OperationalError as exc:
        if not (unverified and exc.args and exc.args[0] in GONE_AWAY
                and time.monotonic() - started < STALLED_AFTER_SECONDS):
            raise
        mysql.discard(g.pop("mysql_db"))
        return run(mysql.connection)


def _query(conn, sql, args):
    cur = conn.cursor()
    try:
        cur.execute(sql, args)
        return cur.fetchall()
    finally:
        cur.close()


def placeholders(values, each="%s"):
    """One placeholder (or each, a row of them) per value, comma-separated: for IN (...) and VALUES lists."""
    return ", ".join([each] * len(values))


def case_when(column, pairs):
    """(sql, args) of a CASE on column giving each key of pairs ([(key, value)]) its value."""
    return f"CASE {column}" + " WHEN %s THEN %s" * len(pairs) + " END", [item for pair in pairs for item in pair]


def query(sql, args=(), one=False):
    """Run one statement; return all rows as dicts, or with one=True the first row or None."""
    rows = with_reconnect(lambda conn: _query(conn, sql, args))
    if one:
        return rows[0] if rows else None
    return rows


def execute(sql, args=(), many=False):
    """Run one writing statement (with many=True, once per row of args) inside the current unit of
    work, or as a unit of its own; return its rowcount and lastrowid."""
    if not g.get("in_transaction"):
        return transactional(execute)(sql, args, many)
    cur = mysql.connection.cursor()
    try:
        if many:
            cur.executemany(sql, args)
        else:
            cur.execute(sql, args)
        return Written(cur.rowcount, cur.lastrowid)
    finally:
        cur.close()


@contextmanager
def _transaction():
    with_reconnect(lambda conn: _query(conn, "START TRANSACTION", ()))
    conn = mysql.connection
    g.in_transaction = True
    try:
        yield
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        g.in_transaction = False
        conn.transaction_open = False


def transactional(unit):
    """Run unit as one transaction: all of it commits, or on any error none of it does.

    A deadlock, a lock wait timeout or a Galera certification conflict rolls it back and runs the whole
    unit again, its reads included, up to MYSQL_TRANSACTION_ATTEMPTS times, then raises Busy. ReadAgain (what
    it read has just changed) runs it again at once, up to READ_AGAIN_ATTEMPTS times: each time means another
    transaction committed the change, so it is not a collision to back off from. A unit called inside another
    joins the outer one.
    """
    @functools.wraps(unit)
    def run(*args, **kwargs):
        if g.get("in_transaction"):
            return unit(*args, **kwargs)
        attempts, collisions, read_agains = current_app.config["MYSQL_TRANSACTION_ATTEMPTS"], 0, 0
        while True:
            try:
                with _transaction():
                    return unit(*args, **kwargs)
            except ReadAgain as exc:
                read_agains += 1
                current_app.logger.info("%s: read %d of %d again: %s", unit.__name__, read_agains,
                                        READ_AGAIN_ATTEMPTS, exc)
                if read_agains == READ_AGAIN_ATTEMPTS:
                    raise Busy(unit.__name__) from exc
            except MySQLdb.OperationalError as exc:
                if exc.args[0] not in RETRYABLE_ERRORS:
                    raise
                collisions += 1
                current_app.logger.warning("%s: attempt %d of %d hit %s", unit.__name__, collisions, attempts, exc)
                if collisions == attempts:
                    raise Busy(unit.__name__) from exc
                time.sleep(random.uniform(0, 0.02 * collisions))
    return run


# --- Schema, migrations and demo data --------------------------------------

CONNECTION_REFUSED = {2002, 2003}
# Connection lost, gone away, refused, timed out, too many connections, server shutting down, and a Galera
# node that is not part of the cluster's primary component (cut off, or still joining).
CONNECTION_ERRORS = CONNECTION_REFUSED | {1040, 1047, 1053, 2005, 2006, 2013, 2026, 2055, 4031}
DB_PROBLEMS = {
    2005: "Unknown server host: fix MYSQL_HOST.",
    1044: "Access denied to the database: grant MYSQL_USER rights on MYSQL_DB, or fix MYSQL_USER.",
    1045: "Access denied: fix MYSQL_USER and MYSQL_PASSWORD.",
    1698: "Access denied: fix MYSQL_USER and MYSQL_PASSWORD.",
    1049: "Unknown database: fix MYSQL_DB, or create the database (`make run` creates it locally).",
}


def is_connection_error(exc):
    """Whether an error means the database cannot be reached, rather than that a statement failed."""
    return bool(exc.args) and exc.args[0] in CONNECTION_ERRORS


def connection_refused_advice():
    """Name the setting that points at the server, socket or host and port, whichever is in use."""
    config = current_app.config
    if config["MYSQL_UNIX_SOCKET"] and config["MYSQL_HOST"] in ("localhost", "", None):
        where, settings = config["MYSQL_UNIX_SOCKET"], "MYSQL_UNIX_SOCKET"
    else:
        where, settings = f"{config['MYSQL_HOST']}:{config['MYSQL_PORT']}", "MYSQL_HOST:MYSQL_PORT"
    return (f"Connection refused: no MariaDB/MySQL server answers at {where}. "
            f"Start it (`make run` starts a local one) or fix {settings}.")


def check_database():
    """Connect once; return None when that works, else a sentence naming the setting to fix."""
    try:
        mysql.connect.close()
    except MySQLdb.OperationalError as exc:
        code = exc.args[0]
        if code in CONNECTION_REFUSED:
            advice = connection_refused_advice()
        else:
            advice = DB_PROBLEMS.get(code, "Cannot reach the database: check the MYSQL_* settings.")
        return f"{advice} (MySQL error {code}: {exc.args[1]})"
    return None


def run_sql_file(cur, path):
    """Execute each statement of an SQL file; statements end with ';' at the end of a line."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for statement in re.split(r";\s*$", text, flags=re.MULTILINE):
        code = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
        if code.strip():
            cur.execute(statement)


def project_file(*parts):
    """A file of the project, which sits beside this module."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), *parts)


@functools.lru_cache(maxsize=1)
def migration_files():
    """Names of the files in migrations/, in the order they apply."""
    return sorted(name for name in os.listdir(project_file("migrations")) if re.fullmatch(r"\d{4}_\w+\.sql", name))


def applied_migration_count():
    return query("SELECT COUNT(*) AS n FROM schema_migrations", one=True)["n"]


def database_tables():
    """The tables in the configured database."""
    rows = query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
    return {row["TABLE_NAME"] for row in rows}


def create_schema():
    """Build schema.sql in an empty database and record every migration as applied."""
    cur = mysql.connection.cursor()
    try:
        run_sql_file(cur, project_file("schema.sql"))
        cur.executemany("INSERT INTO schema_migrations (filename) VALUES (%s)",
                        [(name,) for name in migration_files()])
    finally:
        cur.close()


def apply_migrations():
    """Apply, in order, each migration the database has not recorded; return their names."""
    applied = {row["filename"] for row in query("SELECT filename FROM schema_migrations")}
    pending = [name for name in migration_files() if name not in applied]
    cur = mysql.connection.cursor()
    try:
        for name in pending:
            run_sql_file(cur, project_file("migrations", name))
            cur.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (name,))
    finally:
        cur.close()
    after_load()
    return pending


def seed_database():
    """Load seed.sql; it only adds rows to an empty database."""
    cur = mysql.connection.cursor()
    try:
        run_sql_file(cur, project_file("seed.sql"))
    finally:
        cur.close()
    after_load()
    for fill in current_app.extensions["noeari_after_seed"]:
        fill()


def after_load():
    """Run the back-fills the app registered (init_app's after_load), in order."""
    for fill in current_app.extensions.get("noeari_after_load", ()):
        fill()


def lift_query_timeouts():
    """A schema change on a big table may take minutes, and MariaDB cannot roll back DDL cut off halfway:
    this command's connections wait for the server however long it takes."""
    options = current_app.config["MYSQL_CUSTOM_OPTIONS"] or {}
    current_app.config["MYSQL_CUSTOM_OPTIONS"] = {key: value for key, value in options.items()
                                                  if key not in ("read_timeout", "write_timeout")}


@click.command("init-db")
@with_appcontext
@click.option("--seed", is_flag=True, help="Also load the demo data from seed.sql.")
def init_db_command(seed):
    """Create the tables from schema.sql in an empty database; never touches existing tables."""
    if database_tables():
        click.echo("The database already has tables; nothing to do (use `migrate` for updates).")
        return
    lift_query_timeouts()
    create_schema()
    click.echo("Created the schema.")
    if seed:
        seed_database()
        click.echo("Loaded the demo data.")


@click.command("seed-db")
@with_appcontext
def seed_db_command():
    """Load the demo data; it only adds rows to an empty database."""
    seed_database()
    click.echo("Seed applied (it adds nothing to a database that already has data).")


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Apply pending migrations/ files in order."""
    lift_query_timeouts()
    if "schema_migrations" not in database_tables():
        raise click.ClickException("The database has no schema yet: run `flask --app app init-db` first.")
    applied = apply_migrations()
    click.echo(f"Applied {', '.join(applied)}." if applied else "The schema is up to date.")


@click.command("check-db")
@with_appcontext
def check_db_command():
    """Say whether the database can be reached, and if not which setting to fix."""
    problem = check_database()
    if problem:
        raise click.ClickException(problem)
    click.echo("The database is reachable.")
