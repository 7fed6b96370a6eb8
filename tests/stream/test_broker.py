"""The broker (stream.md, "The broker"): UTL_FILLS created when missing, an existing one used
as it is (a short duplicate window is warned about), the embedded server's store under UTL_HOME."""

import asyncio
import shutil

import nats
from nats.js.api import StorageType, StreamConfig

from tests.conftest import scratch_folder
from utl.stream.broker import embedded_broker, ensure_stream, servers


def test_utl_nats_url_may_name_several_servers():
    assert servers("nats://a:4222, nats://b:4222,") == ["nats://a:4222", "nats://b:4222"]


def test_the_stream_is_created_when_missing_and_an_existing_one_is_kept_with_a_warning():
    store = scratch_folder("nats-broker")
    try:
        with embedded_broker(store) as url:
            async def run():
                nc = await nats.connect(url)
                js = nc.jetstream()
                warnings = []
                await ensure_stream(js, warn=warnings.append)
                created = (await js.stream_info("UTL_FILLS")).config
                await js.delete_stream("UTL_FILLS")
                await js.add_stream(StreamConfig(name="UTL_FILLS", subjects=["utl.fills.>"], storage=StorageType.MEMORY,
                                                 duplicate_window=60))
                await ensure_stream(js, warn=warnings.append)
                kept = (await js.stream_info("UTL_FILLS")).config
                await nc.close()
                return created, kept, warnings

            created, kept, warnings = asyncio.run(run())
        assert created.storage == StorageType.FILE and created.duplicate_window >= 600
        assert created.subjects == ["utl.fills.>"]
        assert kept.storage == StorageType.MEMORY and kept.duplicate_window == 60  # used as it is
        assert len(warnings) == 1 and "under 10 minutes" in warnings[0]
        assert any(store.rglob("*"))  # JetStream's store is where UTL put it
    finally:
        shutil.rmtree(store, ignore_errors=True)
