"""Reading ``UTL_FILLS`` in bulk: a pull consumer of the booker's own over a plain NATS connection.

nats-py turns every message into a ``Msg`` (its protocol line parsed by a regular expression,
its headers into a dict, a callback scheduled): ~19 µs of CPU per message, a core at 50,000
fills/s before any booking. The booker needs three things of a message: its subject, its
stream sequence and its payload. So it speaks the few words of the NATS protocol a pull
consumer needs itself (``CONNECT``, ``SUB``, ``PUB``, ``PING``/``PONG``) on a connection of its
own, asks for messages in pulls of up to a batch, and cuts the replies out of the bytes read
with one pass of :func:`parse_frames` (a ``find`` and a ``split`` per message, no headers
parsed unless the frame is a status).

The consumer is ephemeral, ``AckNone`` (nothing is acknowledged: the committed sequence is in
PostgreSQL) and starts at the sequence after the last one committed. Messages arrive in stream
order; the reader checks each reply's consumer sequence, and on a gap, a lost connection or a
consumer the server no longer has, it makes a new consumer at the sequence after the last
message it received (as nats-py's ordered consumer does). Nothing received is lost: a message
is handed to the booker once, and the booker commits the sequences it booked.

Only what this reader cannot serve goes the nats-py way (:func:`supported`): a server that
requires TLS, or a URL with a scheme other than ``nats://``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from utl.stream.message import Message

CRLF = b"\r\n"
PULL_EXPIRES_S = 2.0  # a pull waits this long for messages, then the server ends it (408) and another goes
EXPIRY_GRACE_S = 0.25  # past its expiry by this much a pull is over on the server, 408 or not
PING_AFTER_S = 2.0  # owed an answer and nothing heard this long: a PING, which a live server answers
SILENCE_S = 10.0  # owed an answer and nothing at all from the server this long: the connection is dead
RECONNECT_WAIT_S = 0.5
API_SID = b"2"  # the subscription of the API replies; 1 is the pulls'


class Unsupported(RuntimeError):
    """This reader cannot use the server (TLS): the caller reads through nats-py."""


class Protocol(RuntimeError):
    """The server said something the reader cannot go on from (it reconnects)."""


@dataclass(frozen=True)
class Status:
    """A status reply to a pull (no stream message): 404 no messages, 408 the pull ended, 409 ..."""

    code: int
    description: str
    pending: int | None  # the pull's messages not delivered (Nats-Pending-Messages)


@dataclass(frozen=True)
class Reply:
    """A reply on the API inbox (a JetStream API response)."""

    data: bytes


@dataclass
class Frames:
    """What one pass over the bytes read found."""

    messages: list[Message]
    consumer_seqs: list[int]  # the consumer sequence of each message, in the same order
    statuses: list[Status]
    replies: list[Reply]
    pings: int
    errors: list[str]
    pending: int | None = None  # what the server still held for the consumer after the last message


def supported(url: str) -> bool:
    return urlsplit(url if "://" in url else f"nats://{url}").scheme == "nats"


def _pending(reply: bytes) -> int | None:
    """The messages the server still held for the consumer, from a reply subject (the v1 form's
    last token, the v2 form's eleventh)."""
    tokens = reply.split(b".")
    token = tokens[8] if len(tokens) == 9 else tokens[10] if len(tokens) >= 11 else b""
    return int(token) if token.isdigit() else None


def ack_sequences(reply: bytes) -> tuple[int, int] | None:
    """(stream sequence, consumer sequence) of a JetStream reply subject, v1
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`` or v2
    ``$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]``."""
    tokens = reply.split(b".")
    if len(tokens) == 9:
        return int(tokens[5]), int(tokens[6])
    if len(tokens) >= 11:
        return int(tokens[7]), int(tokens[8])
    return None


def _status(header: bytes) -> Status:
    """``NATS/1.0 408 Request Timeout\\r\\nNats-Pending-Messages: 5\\r\\n...``"""
    lines = header.split(CRLF)
    first = lines[0].split(b" ", 2)
    code = int(first[1]) if len(first) > 1 and first[1].isdigit() else 0
    description = first[2].decode("utf-8", "replace") if len(first) > 2 else ""
    pending = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"nats-pending-messages":
            with contextlib.suppress(ValueError):
                pending = int(value.strip())
    return Status(code, description, pending)


def parse_frames(buffer: bytes | bytearray, api_sid: bytes) -> tuple[Frames, int]:
    """The complete frames at the start of ``buffer``, and how many bytes they took (a frame cut
    off by the end of what was read stays for the next read).

    A stream message is ``HMSG <subject> <sid> <reply> <header bytes> <total bytes>`` (or ``MSG``
    without headers) followed by its bytes and CRLF; its reply subject carries the sequences. A
    reply without a reply subject and with headers is a status. Frames on ``api_sid`` are API
    responses."""
    out = Frames([], [], [], [], 0, [])
    view = bytes(buffer)
    pos, end = 0, len(view)
    find = view.find
    while pos < end:
        eol = find(CRLF, pos)
        if eol < 0:
            break
        op = view[pos:pos + 4]
        if op == b"HMSG" or op[:3] == b"MSG":
            tokens = view[pos:eol].split(b" ")
            headers = op == b"HMSG"
            if headers:
                if len(tokens) == 6:
                    _, subject, sid, reply, hlen, tlen = tokens
                elif len(tokens) == 5:
                    _, subject, sid, hlen, tlen = tokens
                    reply = b""
                else:
                    raise Protocol(f"bad HMSG line {view[pos:eol][:200]!r}")
                hlen, tlen = int(hlen), int(tlen)
            else:
                if len(tokens) == 5:
                    _, subject, sid, reply, tlen = tokens
                elif len(tokens) == 4:
                    _, subject, sid, tlen = tokens
                    reply = b""
                else:
                    raise Protocol(f"bad MSG line {view[pos:eol][:200]!r}")
                hlen, tlen = 0, int(tlen)
            start = eol + 2
            stop = start + tlen
            if stop + 2 > end:
                break  # the rest of this frame has not been read yet
            if sid == api_sid:
                out.replies.append(Reply(view[start + hlen:stop]))
            elif reply.startswith(b"$JS.ACK."):
                seqs = ack_sequences(reply)
                if seqs is None:
                    raise Protocol(f"reply subject {reply[:200]!r} has no stream sequence")
                out.messages.append(Message(subject.decode(), seqs[0], view[start + hlen:stop]))
                out.consumer_seqs.append(seqs[1])
                out.pending = _pending(reply)
            elif headers:
                out.statuses.append(_status(view[start:start + hlen]))
            pos = stop + 2
            continue
        line = view[pos:eol]
        if line == b"PING":
            out.pings += 1
        elif line.startswith(b"-ERR"):
            out.errors.append(line[4:].strip().decode("utf-8", "replace"))
        # PONG, +OK, INFO (a cluster's servers changed): nothing to do
        pos = eol + 2
    return out, pos


class PullReader:
    """A pull consumer of ``stream`` from ``start_seq``, read in bulk; :meth:`take` hands the
    booker what has arrived. ``open`` connects and makes the consumer; the reading and
    reconnecting run in a task of their own until :meth:`close`."""

    def __init__(self, urls: list[str], stream: str, subjects: str, start_seq: int, batch: int,
                 say=lambda _: None):
        self.urls, self.stream, self.subjects, self.batch, self.say = urls, stream, subjects, max(batch, 1), say
        self.next_seq = start_seq  # the stream sequence the next consumer starts at
        self.messages: collections.deque[Message] = collections.deque()
        self.pending = 0  # the server's count of the consumer's messages not yet delivered
        self.arrived = asyncio.Event()
        self.inbox = f"_INBOX.{secrets.token_hex(11)}"
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._task: asyncio.Task | None = None
        self._replies: asyncio.Queue = asyncio.Queue()
        self._consumer = ""
        self._consumer_seq = 0
        # The pulls asked and not known to be over, oldest first: [expiry, messages still owed].
        self._owed: collections.deque[list] = collections.deque()
        self._pulls = 0
        self._closing = False
        self._room = asyncio.Event()

    # ------------------------------------------------------------- the connection

    async def open(self) -> None:
        await self._connect()
        self._task = asyncio.ensure_future(self._run())

    async def _connect(self) -> None:
        last: Exception | None = None
        for url in self.urls:
            try:
                await self._connect_to(url)
                return
            except Unsupported:
                raise
            except (OSError, asyncio.TimeoutError, Protocol) as exc:
                last = exc
        raise ConnectionError(f"no NATS server answered at {', '.join(self.urls)}: {last}")

    async def _connect_to(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        if parts.scheme != "nats":
            raise Unsupported(f"{parts.scheme}:// URL")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 4222, limit=1 << 24), 5)
        try:
            info_line = await asyncio.wait_for(reader.readline(), 5)
            if not info_line.startswith(b"INFO "):
                raise Protocol(f"not a NATS server: {info_line[:80]!r}")
            info = json.loads(info_line[5:])
            if info.get("tls_required"):
                raise Unsupported("the server requires TLS")
            connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                       "protocol": 1, "lang": "python-utl", "version": "1", "name": "utl-stream-pull"}
            if parts.username and parts.password is not None:
                connect |= {"user": unquote(parts.username), "pass": unquote(parts.password)}
            elif parts.username:
                connect["auth_token"] = unquote(parts.username)
            writer.write(b"CONNECT " + json.dumps(connect).encode() + CRLF + b"PING" + CRLF)
            writer.write(f"SUB {self.inbox}.p 1\r\nSUB {self.inbox}.a 2\r\n".encode())
            await writer.drain()
            answer = await asyncio.wait_for(reader.readline(), 5)
            if answer.startswith(b"-ERR"):
                raise Protocol(answer.decode("utf-8", "replace").strip())
            if not answer.startswith(b"PONG"):
                raise Protocol(f"unexpected {answer[:80]!r} after CONNECT")
        except BaseException:
            writer.close()
            raise
        self._reader, self._writer = reader, writer

    def _drop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._writer is not None and self._consumer:
            with contextlib.suppress(Exception):  # the server forgets it anyway once it is inactive
                self._publish(f"$JS.API.CONSUMER.DELETE.{self.stream}.{self._consumer}", f"{self.inbox}.a", b"")
                await asyncio.wait_for(self._writer.drain(), 1)
        self._drop()

    def _publish(self, subject: str, reply: str, data: bytes) -> None:
        self._writer.write(f"PUB {subject} {reply} {len(data)}\r\n".encode() + data + CRLF)

    # ------------------------------------------------------------- the consumer

    async def _new_consumer(self) -> None:
        """An ephemeral AckNone consumer at ``next_seq`` (the old one, if any, deleted)."""
        if self._consumer:
            self._publish(f"$JS.API.CONSUMER.DELETE.{self.stream}.{self._consumer}", f"{self.inbox}.a", b"")
        config = {"deliver_policy": "by_start_sequence", "opt_start_seq": max(self.next_seq, 1),
                  "ack_policy": "none", "replay_policy": "instant", "filter_subject": self.subjects,
                  "inactive_threshold": int(30e9), "mem_storage": True, "num_replicas": 1}
        self._publish(f"$JS.API.CONSUMER.CREATE.{self.stream}", f"{self.inbox}.a",
                      json.dumps({"stream_name": self.stream, "config": config}).encode())
        await self._writer.drain()
        deadline = time.monotonic() + 10
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Protocol("no answer to the consumer's creation")
            reply = await asyncio.wait_for(self._replies.get(), left)
            answer = json.loads(reply.data or b"{}")
            if str(answer.get("type", "")).endswith("consumer_create_response"):
                break  # else: the old consumer's deletion answered
        if "error" in answer:
            raise Protocol(f"consumer not made: {answer['error'].get('description', answer['error'])}")
        self._consumer, self._consumer_seq = answer["name"], 0
        self._owed.clear()

    @property
    def _outstanding(self) -> int:
        """Messages asked for and not yet delivered, in pulls not known to be over."""
        return sum(owed for _, owed in self._owed)

    def _pull(self) -> None:
        """Ask for more while what is buffered and what is asked for stay under two batches."""
        while self._writer is not None and self._consumer and \
                len(self.messages) + self._outstanding + self.batch <= 2 * self.batch:
            body = json.dumps({"batch": self.batch, "expires": int(PULL_EXPIRES_S * 1e9)}).encode()
            self._publish(f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self._consumer}", f"{self.inbox}.p", body)
            self._owed.append([time.monotonic() + PULL_EXPIRES_S, self.batch])
            self._pulls += 1

    def _expire(self, now: float) -> None:
        """Forget the pulls past their expiry. The server ends a pull at its expiry and says so
        with a 408, but not always: NATS 2.9 let pulls answered in part while messages kept
        coming expire without a word. Counted as owed, they kept the reader from asking again
        (nothing owed by the server, nothing asked: a 10-s stall, then a reconnect, every
        ~40 s at 5,000 fills/s)."""
        while self._owed and self._owed[0][0] + EXPIRY_GRACE_S <= now:
            self._owed.popleft()

    def _delivered(self, n: int) -> None:
        """``n`` messages came: the server answers the oldest pull first."""
        while n and self._owed:
            taken = min(n, self._owed[0][1])
            self._owed[0][1] -= taken
            n -= taken
            if not self._owed[0][1]:
                self._owed.popleft()

    # ------------------------------------------------------------- reading

    async def _run(self) -> None:
        while not self._closing:
            try:
                if self._writer is None:
                    await self._connect()
                await self._consume()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, Protocol) as exc:
                self._drop()
                if self._closing:
                    return
                self.say(f"broker: reading again from sequence {self.next_seq} ({type(exc).__name__}: {exc})")
                await asyncio.sleep(RECONNECT_WAIT_S)

    async def _consume(self) -> None:
        reader = self._reader
        pending = bytearray()
        heard, pinged = time.monotonic(), False  # when the server last sent anything; a PING unanswered
        creating: asyncio.Future | None = asyncio.ensure_future(self._new_consumer())
        reading: asyncio.Future | None = None
        room: asyncio.Future | None = None
        try:
            while True:
                # Cleared before the pulls are reckoned: a take after this wakes the loop below.
                self._room.clear()
                if creating is None:
                    self._expire(time.monotonic())
                    self._pull()
                    await self._writer.drain()
                if reading is None:
                    if creating is None and len(self.messages) >= 2 * self.batch:
                        # The booker is behind: read no more until it takes some (the server holds the rest).
                        await self._room.wait()
                        continue
                    reading = asyncio.ensure_future(reader.read(1 << 20))
                waiting = {reading}
                if creating is not None:
                    waiting.add(creating)
                # Nothing asked for: the server owes nothing until the booker takes what is
                # buffered and the loop asks again, so the wait is for the read or the take
                # (waiting on the read alone, the reader asked for nothing more until a pull
                # expired, and took a silent server for a dead one).
                asked = creating is not None or bool(self._owed)
                now = time.monotonic()
                timeout = None
                if asked:
                    # Woken at the oldest pull's expiry (to ask again if it ended unannounced),
                    # to PING a quiet server, or to give a silent one up.
                    wake = heard + (SILENCE_S if pinged else PING_AFTER_S)
                    if self._owed:
                        wake = min(wake, self._owed[0][0] + EXPIRY_GRACE_S)
                    timeout = max(0.0, wake - now)
                else:
                    heard, pinged = now, False  # owed nothing: the server's quiet says nothing
                    if room is None or room.done():
                        room = asyncio.ensure_future(self._room.wait())
                    waiting.add(room)
                done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    now = time.monotonic()
                    if now - heard >= SILENCE_S:
                        raise Protocol(f"nothing from the server for {SILENCE_S:g} s")
                    if now - heard >= PING_AFTER_S and not pinged:
                        self._writer.write(b"PING" + CRLF)
                        pinged = True
                    continue
                if creating in done:
                    creating.result()  # raises what went wrong
                    creating = None
                if reading in done:
                    data = reading.result()
                    reading = None
                    if not data:
                        raise ConnectionError("the server closed the connection")
                    heard, pinged = time.monotonic(), False
                    pending += data
                    frames, used = parse_frames(pending, API_SID)
                    del pending[:used]
                    self._take_frames(frames)
        finally:
            for future in (creating, reading, room):
                if future is not None and not future.done():
                    future.cancel()

    def _take_frames(self, frames: Frames) -> None:
        if frames.pings:
            self._writer.write(b"PONG\r\n" * frames.pings)
        for reply in frames.replies:
            self._replies.put_nowait(reply)
        if frames.errors:
            raise Protocol("; ".join(frames.errors))
        kept = []
        for message, consumer_seq in zip(frames.messages, frames.consumer_seqs):
            if consumer_seq != self._consumer_seq + 1:
                # A message of this consumer was lost (or a stale one's): start again after the last received.
                self.messages.extend(kept)
                raise Protocol(f"consumer sequence {consumer_seq} after {self._consumer_seq}")
            self._consumer_seq = consumer_seq
            if message.seq < self.next_seq:
                continue  # handed over before (a consumer made again from an earlier point)
            self.next_seq = message.seq + 1
            kept.append(message)
        self._delivered(len(frames.messages))
        for status in frames.statuses:
            if status.code in (404, 408, 409) and status.pending is not None:
                if self._owed:  # a pull ended; the oldest, as they all last as long
                    self._owed.popleft()
            elif status.code == 409 and "consumer deleted" in status.description.lower():
                raise Protocol(f"the server deleted the consumer ({status.description})")
            elif status.code != 100:
                self._owed.clear()  # a pull ended without saying how much was left: ask afresh
        if frames.pending is not None:
            self.pending = frames.pending
        if kept:
            self.messages.extend(kept)
            self.arrived.set()

    # ------------------------------------------------------------- the booker's side

    def empty(self) -> bool:
        return not self.messages

    async def take(self, most: int, wait_s: float, stop: asyncio.Event) -> list[Message]:
        """Up to ``most`` messages: waits for the first (or the stop), then at most ``wait_s``
        more while fewer than ``most`` have arrived."""
        while not self.messages:
            if stop.is_set():
                return []
            if self._task is not None and self._task.done():
                self._task.result()  # the reader stopped: raise why
            self.arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.1)
        deadline = time.monotonic() + wait_s
        while len(self.messages) < most and (left := deadline - time.monotonic()) > 0:
            self.arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)
        count = min(most, len(self.messages))
        taken = [self.messages.popleft() for _ in range(count)]
        self._room.set()
        return taken
