"""Backups: one archive holding a consistent dump of the database (photos included) and the instance key,
and its restore into an empty database. Commands `flask --app app backup` and `flask --app app restore FILE`;
it knows nothing of requests."""
import datetime
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile

import click
from flask import current_app
from flask.cli import with_appcontext

import db

DUMP_NAME = "database.sql"
KEY_NAME = "secret_key"
UPLOADS_PREFIX = "uploads/"
MANIFEST_NAME = "manifest.json"
# A dump names the account that defined each trigger; restoring as another account must not need it.
DEFINER = re.compile(rb"/\*!50017 DEFINER=`[^`]*`@`[^`]*`\*/ ?")


def init_app(app):
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


def client_command(program, config):
    """The argv and environment to run a MariaDB client program against the configured database."""
    argv = [program, "--no-defaults", "--default-character-set=utf8mb4"]
    if config["MYSQL_UNIX_SOCKET"]:
        argv.append(f"--socket={config['MYSQL_UNIX_SOCKET']}")
    else:
        argv += [f"--host={config['MYSQL_HOST']}", f"--port={config['MYSQL_PORT']}", "--protocol=tcp"]
    if config["MYSQL_USER"]:
        argv.append(f"--user={config['MYSQL_USER']}")
    env = dict(os.environ)
    if config["MYSQL_PASSWORD"]:
        env["MYSQL_PWD"] = config["MYSQL_PASSWORD"]  # not on the command line, where ps would show it
    return argv, env


def key_path():
    return os.path.join(current_app.instance_path, KEY_NAME)


def make_backup(folder):
    """Write folder/noeari-<UTC timestamp>.tar.gz and return its path.

    The dump is one transaction's snapshot (--single-transaction), photos and all.
    """
    config = current_app.config
    os.makedirs(folder, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(folder, f"noeari-{stamp}.tar.gz")
    argv, env = client_command("mariadb-dump", config)
    argv += ["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob", "--quick",
             "--skip-lock-tables", config["MYSQL_DB"]]
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        dump = os.path.join(scratch, DUMP_NAME)
        with open(dump, "wb") as out:
            done = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.PIPE)
        if done.returncode != 0:
            raise click.ClickException(f"mariadb-dump failed: {done.stderr.decode(errors='replace').strip()}")
        manifest = {"created_at": stamp, "database": config["MYSQL_DB"],
                    "migrations": db.migration_files()}
        draft = os.path.join(scratch, "archive.tar.gz")
        with tarfile.open(draft, "w:gz") as archive:
            add_bytes(archive, MANIFEST_NAME, json.dumps(manifest, indent=2).encode())
            archive.add(dump, DUMP_NAME, filter=private)
            if os.path.exists(key_path()):
                archive.add(key_path(), KEY_NAME, filter=private)
        os.chmod(draft, 0o600)  # it holds the key and every account's password hash
        try:
            os.link(draft, path)  # never replaces another backup
        except FileExistsError:
            raise click.ClickException(f"{path} exists already; wait a second and run it again.") from None
    return path


def private(info):
    """Every member readable by its owner alone, whatever umask the dump was written under."""
    info.mode = 0o600
    return info


def add_bytes(archive, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(data))


def restore_backup(path):
    """Load the archive at path into the configured database, which must be empty, and put back its key,
    which replaces this instance's (the old one is kept aside). An archive from before photos moved into
    the database holds them as files: they go back into UPLOAD_FOLDER, and the migrations that follow
    move them in; photo files already present are kept."""
    config = current_app.config
    try:
        archive = tarfile.open(path, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise click.ClickException(f"{path} is not a noeari backup: {exc}") from None
    with archive:
        names = archive.getnames()
        if DUMP_NAME not in names or MANIFEST_NAME not in names:
            raise click.ClickException(f"{path} is not a noeari backup: it has no {DUMP_NAME}.")
        try:
            tables = len(db.database_tables())
        except db.MySQLdb.Error as exc:
            raise click.ClickException(f"cannot reach the database {config['MYSQL_DB']}: {exc}") from None
        if tables:
            raise click.ClickException(
                f"The database {config['MYSQL_DB']} is not empty ({tables} tables). Restore only into an empty "
                "database: create a new one and set MYSQL_DB, or drop this one if you are sure.")
        argv, env = client_command("mariadb", config)
        # An archive is data, not a script: the client's own commands (\\! to run a shell, source, tee)
        # are refused in sandbox mode, so a tampered dump cannot run anything.
        argv += ["--sandbox", config["MYSQL_DB"]]
        loader = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for line in archive.extractfile(DUMP_NAME):
                loader.stdin.write(DEFINER.sub(b"", line))
            loader.stdin.close()
        except BrokenPipeError:
            pass
        errors = loader.stderr.read()
        if loader.wait() != 0:
            raise click.ClickException(f"loading the dump failed: {errors.decode(errors='replace').strip()}")
        restored = restore_files(archive, config["UPLOAD_FOLDER"])
    return restored


def restore_files(archive, uploads):
    """Put back the archive's photos (plain files only, never outside the upload folder) and its key."""
    photos = 0
    for member in archive.getmembers():
        if member.name.startswith(UPLOADS_PREFIX):
            name = member.name[len(UPLOADS_PREFIX):]
            target = os.path.join(uploads, name)
            if not member.isfile() or not name or "/" in name or name.startswith(".") or os.path.exists(target):
                continue
            os.makedirs(uploads, exist_ok=True)
            with archive.extractfile(member) as source, open(target, "xb") as out:
                shutil.copyfileobj(source, out)
            photos += 1
        elif member.name == KEY_NAME and member.isfile():
            key = archive.extractfile(member).read()
            os.makedirs(current_app.instance_path, exist_ok=True)
            if os.path.exists(key_path()):
                with open(key_path(), "rb") as f:
                    if f.read() == key:
                        continue
                os.replace(key_path(), key_path() + ".before-restore")
            fd = os.open(key_path(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key)
    return photos


@click.command("backup")
@click.option("--folder", default=None, help="Where to write the archive (default BACKUP_FOLDER).")
@with_appcontext
def backup_command(folder):
    """Write a backup archive of the database, photos included, and the instance key."""
    path = make_backup(folder or current_app.config["BACKUP_FOLDER"])
    click.echo(f"Backup written to {path} ({os.path.getsize(path)} bytes).")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def restore_command(path):
    """Restore a backup archive into the (empty) configured database."""
    restore_backup(path)
    db.lift_query_timeouts()
    applied = db.apply_migrations()  # a backup from an older version is brought up to this code's schema
    photos = db.query("SELECT COUNT(*) AS n FROM photo", one=True)["n"]
    click.echo(f"Restored {path} into {current_app.config['MYSQL_DB']}, with {photos} photos"
               + (f", and applied {', '.join(applied)}" if applied else "") + ". Restart the app to use it.")
