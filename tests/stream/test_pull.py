"""The booker's own pull reader (utl.stream.pull): replies cut out of the bytes read, whatever
the way the socket splits them, statuses told from messages, and a reader against a real
broker that hands over every message once, in order, from the sequence asked for."""

from __future__ import annotations

import asyncio

import nats
import pytest

from utl.stream.broker import ensure_stream
from utl.stream.message import Message
from utl.stream.pull import API_SID, PullReader, Status, ack_sequences, parse_frames, supported


def hmsg(subject: str, sid: int, reply: str, header: bytes, payload: bytes) -> bytes:
    return (f"HMSG {subject} {sid} {reply} {len(header)} {len(header) + len(payload)}\r\n".encode()
            + header + payload + b"\r\n")


def status(header: bytes) -> bytes:
    """A status frame: headers only, no reply subject."""
    return f"HMSG _INBOX.x.p 1 {len(header)} {len(header)}\r\n".encode() + header + b"\r\n"


def ack(sseq: int, cseq: int) -> str:
    return f"$JS.ACK.UTL_FILLS.c1.1.{sseq}.{cseq}.1709615261367000000.{100 - cseq}"


HEADER = b"NATS/1.0\r\nNats-Msg-Id: okx:desk:BTC/USD:1\r\n\r\n"
# A payload that holds what a frame parser could trip on: CRLF, "HMSG", spaces.
ODD = b'{"id": "7", "info": "a\\r\\nHMSG x 1 2 3\\r\\n MSG"}'

STREAM_BYTES = b"".join([
    b"INFO {\"server_id\": \"x\"}\r\n",
    hmsg("utl.fills.okx.desk", 1, ack(10, 1), HEADER, b'{"id": "1"}'),
    b"PING\r\n",
    f"MSG utl.fills.okx.desk 1 {ack(11, 2)} {len(ODD)}\r\n".encode() + ODD + b"\r\n",
    hmsg("utl.fills.bybit.api", 1, ack(12, 3), HEADER, b""),
    # A pull that ended: a status, no reply subject.
    status(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 17\r\nNats-Pending-Bytes: 0\r\n\r\n"),
    b"+OK\r\n",
    # An API response on its own subscription.
    b'MSG _INBOX.x.a 2 61\r\n{"type": "io.nats.jetstream.api.v1.consumer_create_response"}\r\n',
])

EXPECTED = [Message("utl.fills.okx.desk", 10, b'{"id": "1"}'), Message("utl.fills.okx.desk", 11, ODD),
            Message("utl.fills.bybit.api", 12, b"")]


def test_one_read_holding_everything_gives_messages_statuses_and_api_replies():
    frames, used = parse_frames(STREAM_BYTES, API_SID)
    assert used == len(STREAM_BYTES)
    assert frames.messages == EXPECTED
    assert frames.consumer_seqs == [1, 2, 3]
    assert frames.statuses == [Status(408, "Request Timeout", 17)]
    assert frames.pings == 1
    assert [r.data for r in frames.replies] == [b'{"type": "io.nats.jetstream.api.v1.consumer_create_response"}']


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1000])
def test_frames_split_anywhere_by_the_socket_come_out_the_same(chunk):
    """Every cut of the bytes, a frame's line or its payload or its closing CRLF, waits for the rest."""
    pending = bytearray()
    messages, statuses, pings = [], [], 0
    for start in range(0, len(STREAM_BYTES), chunk):
        pending += STREAM_BYTES[start:start + chunk]
        frames, used = parse_frames(pending, API_SID)
        del pending[:used]
        messages += frames.messages
        statuses += frames.statuses
        pings += frames.pings
    assert not pending
    assert messages == EXPECTED
    assert statuses == [Status(408, "Request Timeout", 17)]
    assert pings == 1


def test_a_frame_cut_short_is_not_taken():
    whole = hmsg("utl.fills.okx.desk", 1, ack(10, 1), HEADER, b'{"id": "1"}')
    for cut in range(len(whole)):
        frames, used = parse_frames(whole[:cut], API_SID)
        assert (frames.messages, used) == ([], 0), cut


def test_a_redelivery_reply_subject_and_the_v2_form_give_the_stream_sequence():
    assert ack_sequences(b"$JS.ACK.UTL_FILLS.c1.3.4711.12.1709615261367000000.0") == (4711, 12)  # delivered 3 times
    assert ack_sequences(b"$JS.ACK.hub.ACC.UTL_FILLS.c1.1.4711.12.1709615261367000000.0.tok") == (4711, 12)
    assert ack_sequences(b"$JS.ACK.UTL_FILLS.c1") is None


def test_an_error_from_the_server_is_reported():
    frames, _ = parse_frames(b"-ERR 'Maximum Payload Violation'\r\n", API_SID)
    assert frames.errors == ["'Maximum Payload Violation'"]


def test_only_plain_nats_urls_are_read_by_the_pull_reader():
    assert supported("nats://127.0.0.1:4222") and supported("127.0.0.1:4222")
    assert not supported("tls://127.0.0.1:4222")


def _send(js, n: int):
    """Publish test message ``n`` (its subject and id made from ``n``); the ack's awaitable."""
    return js.publish(f"utl.fills.v{n % 3}.a{n % 5}", b'{"id": "%d"}' % n, headers={"Nats-Msg-Id": f"t:{n}"})


async def _publish(url: str, n: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_stream(js)
    await asyncio.gather(*[_send(js, i) for i in range(n)])
    await nc.close()


async def _read(url: str, start: int, batch: int, want: int) -> list[Message]:
    reader = PullReader([url], "UTL_FILLS", "utl.fills.>", start, batch)
    await reader.open()
    got: list[Message] = []
    try:
        while len(got) < want:
            got += await asyncio.wait_for(reader.take(batch, 0.002, asyncio.Event()), 30)
        await asyncio.sleep(0.2)
        assert reader.empty()  # nothing beyond the stream's end
    finally:
        await reader.close()
    return got


def test_the_reader_hands_over_every_message_once_in_order_from_the_sequence_asked(nats_url):
    asyncio.run(_publish(nats_url, 2500))
    got = asyncio.run(_read(nats_url, 101, 300, 2400))
    assert [m.seq for m in got] == list(range(101, 2501))
    assert got[0] == Message("utl.fills.v1.a0", 101, b'{"id": "100"}')


class _Writer:
    def __init__(self):
        self.sent = b""

    def write(self, data: bytes) -> None:
        self.sent += data


def test_a_gap_in_the_consumer_sequence_keeps_what_came_before_and_starts_again_after_it():
    from utl.stream.pull import Protocol

    async def run() -> None:
        reader = PullReader(["nats://127.0.0.1:1"], "UTL_FILLS", "utl.fills.>", 10, 100)
        reader._writer = _Writer()
        data = b"".join([hmsg("utl.fills.okx.desk", 1, ack(10, 1), HEADER, b"a"),
                         hmsg("utl.fills.okx.desk", 1, ack(11, 2), HEADER, b"b"),
                         hmsg("utl.fills.okx.desk", 1, ack(13, 4), HEADER, b"d"),  # consumer sequence 3 lost
                         b"PING\r\n"])
        frames, _ = parse_frames(data, API_SID)
        with pytest.raises(Protocol):
            reader._take_frames(frames)
        assert [m.seq for m in reader.messages] == [10, 11]
        assert reader.next_seq == 12  # the next consumer starts after the last message received
        assert reader._writer.sent == b"PONG\r\n"

    asyncio.run(run())


def test_a_message_before_the_sequence_asked_for_is_not_handed_over_twice():
    async def run() -> None:
        reader = PullReader(["nats://127.0.0.1:1"], "UTL_FILLS", "utl.fills.>", 12, 100)
        reader._writer = _Writer()
        frames, _ = parse_frames(hmsg("utl.fills.okx.desk", 1, ack(11, 1), HEADER, b"old")
                                 + hmsg("utl.fills.okx.desk", 1, ack(12, 2), HEADER, b"new"), API_SID)
        reader._take_frames(frames)
        assert [m.data for m in reader.messages] == [b"new"]

    asyncio.run(run())


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_taking_a_batch_asks_for_more_at_once_rather_than_when_a_pull_expires(nats_url, monkeypatch):
    """With both pulls answered in full the server owes nothing: the booker's take must make
    the reader ask again (it once waited for a pull to expire, or took the quiet for a dead
    server and reconnected, stalling a backlog 2-10 s at a time)."""
    import utl.stream.pull as pull

    monkeypatch.setattr(pull, "PULL_EXPIRES_S", 120.0)
    monkeypatch.setattr(pull, "SILENCE_S", 120.0)
    asyncio.run(_publish(nats_url, 1000))
    said: list[str] = []

    async def run() -> list[int]:
        reader = PullReader([nats_url], "UTL_FILLS", "utl.fills.>", 1, 100, said.append)
        await reader.open()
        got: list[int] = []
        try:
            # A first take of a few while the pulls are still answered: the buffer never fills
            # to two batches, so the reader is left reading with nothing owed.
            got += [m.seq for m in await asyncio.wait_for(reader.take(10, 0, asyncio.Event()), 20)]
            while len(got) < 1000:
                # Every pull answered in full before each take: the server owes nothing. (Near the
                # end the last pull may ask for more than the stream holds: it stays owed, so
                # there the wait is for the rest of the stream, however the reads were cut.)
                await asyncio.wait_for(_until(lambda: reader.messages and (
                    reader._outstanding == 0 or len(got) + len(reader.messages) >= 1000)), 20)
                got += [m.seq for m in await reader.take(100, 0.002, asyncio.Event())]
            assert reader._pulls >= 10  # one pull per batch taken, not one per expiry
        finally:
            await reader.close()
        return got

    assert asyncio.run(run()) == list(range(1, 1001))
    assert said == []  # never reconnected


def test_pulls_that_end_without_a_word_are_asked_again_once_past_their_expiry(nats_url, monkeypatch):
    """A pull's end is not always announced: NATS 2.9 let partly answered pulls expire with no
    408, the reader went on counting their messages as owed, asked for nothing, and waited for
    the silence to end (a 10-s stall, then a reconnect; ``bench/stream.py`` at 5,000 fills/s met
    one every ~40 s). A pull past its own expiry is over, whatever the server said."""
    import utl.stream.pull as pull

    monkeypatch.setattr(pull, "PULL_EXPIRES_S", 0.3)
    monkeypatch.setattr(pull, "SILENCE_S", 120.0)  # no reconnect may hide a stall
    said: list[str] = []

    async def run() -> list[int]:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await ensure_stream(js)
        reader = PullReader([nats_url], "UTL_FILLS", "utl.fills.>", 1, 100, said.append)
        await reader.open()
        got: list[int] = []
        try:
            for round_ in range(4):
                # Fewer than a pull asks for, so every pull is left partly answered, then a
                # wait past every pull's expiry before the next messages come.
                for n in range(round_ * 30, round_ * 30 + 30):
                    await _send(js, n)
                while len(got) < 30 * (round_ + 1):
                    got += [m.seq for m in await asyncio.wait_for(reader.take(100, 0.002, asyncio.Event()), 5)]
                await asyncio.sleep(1.0)
        finally:
            await reader.close()
            await nc.close()
        return got

    assert asyncio.run(run()) == list(range(1, 121))
    assert said == []


def test_pulls_expiring_while_messages_flow_never_stall_the_reader(nats_url, monkeypatch):
    """Pulls too large to be answered in full, expiring every 0.1 s while messages keep coming:
    the race in which a pull ended unannounced (above). Every message arrives, in order, and
    no silence is ever taken for a dead server."""
    import utl.stream.pull as pull

    monkeypatch.setattr(pull, "PULL_EXPIRES_S", 0.1)
    monkeypatch.setattr(pull, "SILENCE_S", 120.0)
    said: list[str] = []
    total = 4000

    async def publish(js) -> None:
        for start in range(0, total, 20):  # ~2,000 a second, in bursts of 20
            await asyncio.gather(*[_send(js, n) for n in range(start, start + 20)])
            await asyncio.sleep(0.01)

    async def run() -> list[int]:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await ensure_stream(js)
        reader = PullReader([nats_url], "UTL_FILLS", "utl.fills.>", 1, 50_000, said.append)
        await reader.open()
        sending = asyncio.ensure_future(publish(js))
        got: list[int] = []
        try:
            async def take_all() -> None:
                while len(got) < total:
                    got.extend(m.seq for m in await reader.take(500, 0.002, asyncio.Event()))
            await asyncio.wait_for(take_all(), 30)
            await sending
        finally:
            sending.cancel()
            await reader.close()
            await nc.close()
        return got

    assert asyncio.run(run()) == list(range(1, total + 1))
    assert said == []


def test_the_servers_count_of_what_it_still_holds_is_read_off_each_reply_subject():
    from utl.stream.pull import _pending

    assert _pending(b"$JS.ACK.UTL_FILLS.utl-stream.1.41.40.1733580000000000000.1234") == 1234
    assert _pending(b"$JS.ACK.hub.ACCHASH.UTL_FILLS.utl-stream.1.41.40.1733580000000000000.7.tok") == 7
    assert _pending(b"$JS.ACK.UTL_FILLS.utl-stream.1.41.40.1733580000000000000.0") == 0
    assert _pending(b"$JS.ACK.too.short") is None
