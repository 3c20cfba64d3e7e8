"""Request/response over one long-lived stream per (peer, protocol), framed (ADR 0006).

Outbound: `request` and `send` open the stream lazily and reuse it; one reader task per stream
matches RESPONSE/ERROR frames to pending requests by id. Every request has a deadline; when it
fires the stream is reset and every request pending on it fails, so a late reply can never
answer another request. A request cancelled from outside (not by its own deadline) leaves its
id "abandoned": its late reply is discarded.

Inbound: the remote's stream is served by a reader that runs REQUEST handlers concurrently (at
most `HANDLERS_INFLIGHT_PER_STREAM_MAX` per stream) and ONEWAY handlers in arrival order, one at a
time (Raft messages keep their order). A failing handler produces an ERROR frame; a malformed or
oversized frame closes the stream with a logged reason. Nothing here can crash the node.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from types import MappingProxyType

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID

from node.p2p import limits
from node.p2p.errors import (
    FrameError,
    NotRunning,
    PayloadTooLarge,
    PeerNotAllowed,
    RemoteError,
    RequestTimeout,
    StreamFailed,
    TooManyInflight,
)
from node.p2p.framing import (
    REQUEST_ID_MAX,
    Frame,
    FrameDecoder,
    FrameKind,
    encode_error,
    encode_frame,
    error_reason,
)
from node.p2p.network import StreamCounts

log = logging.getLogger("crossbill.p2p.reqresp")

# handler(peer_id, payload) -> response payload (None = empty response; ignored for one-way).
Handler = Callable[[str, bytes], Awaitable[bytes | None]]

_STREAM_ERRORS = (BaseLibp2pError, OSError)
_RESET_TIMEOUT_S = 1.0


@dataclasses.dataclass(slots=True)
class _Counters:
    """The mutable side of `StreamCounts` (one per protocol)."""

    requests_out: int = 0
    responses_in: int = 0
    remote_errors: int = 0
    timeouts: int = 0
    stream_failures: int = 0
    oneway_out: int = 0
    requests_in: int = 0
    oneway_in: int = 0
    handler_errors: int = 0
    streams_opened: int = 0
    streams_accepted: int = 0
    frames_refused: int = 0

    def freeze(self) -> StreamCounts:
        return StreamCounts(**dataclasses.asdict(self))


async def reset_quietly(stream: INetStream, where: str) -> bool:
    """Reset a stream we are done with (bounded in time, shielded); False if py-libp2p raised
    doing so, which is logged: the caller counts it. Called from `finally` clauses of stream
    handlers, so nothing may escape: whatever a dead connection makes libp2p raise here is
    caught (`NetStream.reset` already swallows the muxer's errors)."""
    with trio.CancelScope(shield=True), trio.move_on_after(_RESET_TIMEOUT_S):
        try:
            await stream.reset()
        except Exception as exc:
            log.debug("reset of %s failed: %s: %s", where, type(exc).__name__, exc)
            return False
    return True


async def _read_frames_into(stream: INetStream, decoder: FrameDecoder) -> list[Frame]:
    """Read once from the stream; the frames completed by that read (maybe none).
    Raises StreamFailed on EOF or a stream error, FrameError on a bad frame."""
    try:
        data = await stream.read(limits.STREAM_READ_CHUNK_BYTES)
    except _STREAM_ERRORS as exc:
        raise StreamFailed(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
    if not data:
        raise StreamFailed("closed by the peer")
    return decoder.feed(data)


class _Pending:
    __slots__ = ("done", "error", "frame")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.frame: Frame | None = None
        self.error: Exception | None = None


class _Outbound:
    """One long-lived outbound stream to (peer, protocol)."""

    def __init__(self, peer: str, protocol: str, stream: INetStream) -> None:
        self.peer = peer
        self.protocol = protocol
        self.stream = stream
        self.write_lock = trio.Lock()
        self.pending: dict[int, _Pending] = {}
        self.abandoned: set[int] = set()
        self.next_id = 1
        self.failed: StreamFailed | None = None
        self.reader_scope = trio.CancelScope()

    def new_id(self) -> int:
        rid = self.next_id
        self.next_id = 1 if rid == REQUEST_ID_MAX else rid + 1
        return rid

    def mark_failed(self, error: StreamFailed) -> bool:
        """Fail every pending request (synchronously). False if already failed."""
        if self.failed is not None:
            return False
        self.failed = error
        for p in self.pending.values():
            p.error = error
            p.done.set()
        self.pending.clear()
        self.abandoned.clear()
        self.reader_scope.cancel()
        return True

    def describe(self) -> str:
        return f"{self.protocol} stream to {self.peer}"


class ReqResp:
    """The request/response half of `P2PNode`; see its docstring for the public API."""

    def __init__(self, host: IHost, is_allowed: Callable[[str], bool]) -> None:
        self._host = host
        self._is_allowed = is_allowed
        self._handlers: dict[str, Handler] = {}
        self._outbound: dict[tuple[str, str], _Outbound] = {}
        self._open_locks: dict[tuple[str, str], trio.Lock] = {}
        self._nursery: trio.Nursery | None = None
        self._counters: dict[str, _Counters] = {}
        self.reset_failures = 0

    # ------------------------------------------------------------------ lifecycle

    def attach(self, nursery: trio.Nursery | None) -> None:
        self._nursery = nursery

    def fail_all(self, reason: str) -> None:
        """Fail every outbound stream and the requests pending on them (the node is stopping;
        closing the host resets the streams themselves)."""
        for ch in list(self._outbound.values()):
            ch.mark_failed(StreamFailed(f"{ch.describe()}: {reason}"))
        self._outbound.clear()

    def _stats(self, protocol: str) -> _Counters:
        s = self._counters.get(protocol)
        if s is None:
            s = self._counters[protocol] = _Counters()
        return s

    def counts(self) -> MappingProxyType[str, StreamCounts]:
        """Events by protocol id since start (every protocol served or asked)."""
        return MappingProxyType({p: c.freeze() for p, c in sorted(self._counters.items())})

    async def _reset(self, stream: INetStream, where: str) -> None:
        if not await reset_quietly(stream, where):
            self.reset_failures += 1

    # ------------------------------------------------------------------ public (via P2PNode)

    def register_handler(self, protocol_id: str, handler: Handler) -> None:
        if not 0 < len(protocol_id) <= limits.PROTOCOL_ID_CHARS_MAX \
                or not protocol_id.startswith("/"):
            raise ValueError(f"protocol id {protocol_id!r}: '/name/version', at most "
                             f"{limits.PROTOCOL_ID_CHARS_MAX} characters")
        if protocol_id in self._handlers:
            raise ValueError(f"a handler for {protocol_id} is already registered")
        if len(self._handlers) >= limits.PROTOCOLS_MAX:
            raise ValueError(f"at most {limits.PROTOCOLS_MAX} protocols")
        self._handlers[protocol_id] = handler
        self._stats(protocol_id)
        self._host.set_stream_handler(TProtocol(protocol_id), self._serve_inbound)

    async def request(self, peer_id: str, protocol_id: str, payload: bytes, *,
                      timeout_s: float) -> bytes:
        if not 0 < timeout_s <= limits.REQUEST_TIMEOUT_S_MAX:
            raise ValueError(f"timeout_s must lie in (0, {limits.REQUEST_TIMEOUT_S_MAX}]")
        frame_payload_check(payload)
        stats = self._stats(protocol_id)
        stats.requests_out += 1
        pending = _Pending()
        ch: _Outbound | None = None
        rid = -1
        finished = False
        with trio.move_on_after(timeout_s) as deadline:
            try:
                ch = await self._channel(peer_id, protocol_id)
                if len(ch.pending) >= limits.REQUESTS_INFLIGHT_PER_STREAM_MAX:
                    raise TooManyInflight(
                        f"{ch.describe()} already has {len(ch.pending)} requests in flight")
                rid = ch.new_id()
                ch.pending[rid] = pending
                await self._write(ch, encode_frame(FrameKind.REQUEST, rid, payload))
                await pending.done.wait()
                finished = True
            finally:
                if ch is not None and rid >= 0 and not finished \
                        and ch.pending.pop(rid, None) is not None \
                        and not deadline.cancel_called:
                    # cancelled from outside or failed: a late reply must be discarded
                    ch.abandoned.add(rid)
                    if len(ch.abandoned) > limits.REQUESTS_INFLIGHT_PER_STREAM_MAX:
                        await self._fail(ch, StreamFailed(
                            f"{ch.describe()}: too many abandoned requests"))
        if not finished:  # our own deadline fired
            stats.timeouts += 1
            if ch is not None:
                await self._fail(ch, StreamFailed(
                    f"{ch.describe()}: reset after a request timed out"))
            raise RequestTimeout(f"no response from {peer_id} on {protocol_id} within "
                                 f"{timeout_s} s; stream reset")
        if pending.error is not None:
            stats.stream_failures += 1
            raise pending.error
        frame = pending.frame
        if frame is None:  # impossible: done is only set with a frame or an error
            raise RuntimeError("request completed without a frame")
        if frame.kind is FrameKind.ERROR:
            stats.remote_errors += 1
            raise RemoteError(f"{peer_id} {protocol_id}: {error_reason(frame)}")
        stats.responses_in += 1
        return frame.payload

    async def send(self, peer_id: str, protocol_id: str, payload: bytes, *,
                   timeout_s: float = limits.FRAME_WRITE_TIMEOUT_S) -> None:
        """One-way message: returns once the frame is handed to the stream (no ack)."""
        frame_payload_check(payload)
        stats = self._stats(protocol_id)
        with trio.move_on_after(timeout_s) as deadline:
            ch = await self._channel(peer_id, protocol_id)
            await self._write(ch, encode_frame(FrameKind.ONEWAY, ch.new_id(), payload))
            stats.oneway_out += 1
        if deadline.cancelled_caught:
            stats.timeouts += 1
            raise RequestTimeout(f"could not send to {peer_id} on {protocol_id} "
                                 f"within {timeout_s} s")

    async def send_many(self, peer_id: str, protocol_id: str, payloads: list[bytes], *,
                        timeout_s: float = limits.FRAME_WRITE_TIMEOUT_S) -> None:
        """Several one-way messages in one stream write (one muxer frame, one Noise message
        while they fit): the receiver reads them as the same frames `send` would write."""
        for payload in payloads:
            frame_payload_check(payload)
        stats = self._stats(protocol_id)
        with trio.move_on_after(timeout_s) as deadline:
            ch = await self._channel(peer_id, protocol_id)
            await self._write(ch, b"".join(encode_frame(FrameKind.ONEWAY, ch.new_id(), p)
                                           for p in payloads))
            stats.oneway_out += len(payloads)
        if deadline.cancelled_caught:
            stats.timeouts += 1
            raise RequestTimeout(f"could not send to {peer_id} on {protocol_id} "
                                 f"within {timeout_s} s")

    def open_streams(self) -> list[tuple[str, str]]:
        return [k for k, ch in self._outbound.items() if ch.failed is None]

    # ------------------------------------------------------------------ outbound internals

    async def _channel(self, peer_id: str, protocol_id: str) -> _Outbound:
        if not self._is_allowed(peer_id):
            raise PeerNotAllowed(f"{peer_id} is not in the consortium allowlist")
        if self._nursery is None:
            raise NotRunning("the p2p node is not running")
        key = (peer_id, protocol_id)
        ch = self._outbound.get(key)
        if ch is not None and ch.failed is None:
            return ch
        lock = self._open_locks.setdefault(key, trio.Lock())
        async with lock:
            ch = self._outbound.get(key)
            if ch is not None and ch.failed is None:
                return ch
            stream: INetStream | None = None
            with trio.move_on_after(limits.STREAM_OPEN_TIMEOUT_S):
                try:
                    stream = await self._host.new_stream(
                        ID.from_base58(peer_id), [TProtocol(protocol_id)])
                except _STREAM_ERRORS as exc:
                    raise StreamFailed(
                        f"cannot open {protocol_id} stream to {peer_id}: "
                        f"{type(exc).__name__}: {exc}") from None
            if stream is None:
                raise StreamFailed(f"cannot open {protocol_id} stream to {peer_id}: timed out "
                                   f"after {limits.STREAM_OPEN_TIMEOUT_S} s")
            if self._nursery is None:
                await self._reset(stream, f"{protocol_id} stream to {peer_id}")
                raise NotRunning("the p2p node stopped")
            ch = _Outbound(peer_id, protocol_id, stream)
            self._outbound[key] = ch
            self._stats(protocol_id).streams_opened += 1
            self._nursery.start_soon(self._outbound_reader, ch)
            return ch

    async def _write(self, ch: _Outbound, data: bytes) -> None:
        async with ch.write_lock:
            if ch.failed is not None:
                raise ch.failed
            completed = False
            error: StreamFailed | None = None
            try:
                with trio.move_on_after(limits.FRAME_WRITE_TIMEOUT_S):
                    try:
                        await ch.stream.write(data)
                        completed = True
                    except _STREAM_ERRORS as exc:
                        error = StreamFailed(f"{ch.describe()}: write failed: {exc}")
                if not completed and error is None:
                    error = StreamFailed(
                        f"{ch.describe()}: write timed out after {limits.FRAME_WRITE_TIMEOUT_S} s")
            finally:
                if not completed:
                    # Failed, timed out or cancelled mid-frame: the frame boundary is lost.
                    await self._fail(ch, error or StreamFailed(
                        f"{ch.describe()}: write interrupted"))
            if error is not None:
                raise error

    async def _fail(self, ch: _Outbound, error: StreamFailed) -> None:
        if ch.mark_failed(error):
            if self._outbound.get((ch.peer, ch.protocol)) is ch:
                del self._outbound[(ch.peer, ch.protocol)]
            log.info("%s closed: %s", ch.describe(), error)
            await self._reset(ch.stream, ch.describe())

    async def _outbound_reader(self, ch: _Outbound) -> None:
        decoder = FrameDecoder()
        error: StreamFailed | None = None
        with ch.reader_scope:
            try:
                while True:
                    for frame in await _read_frames_into(ch.stream, decoder):
                        if frame.kind not in (FrameKind.RESPONSE, FrameKind.ERROR):
                            raise FrameError(f"unexpected {frame.kind.name} frame on an "
                                             "outbound stream")
                        p = ch.pending.pop(frame.request_id, None)
                        if p is not None:
                            p.frame = frame
                            p.done.set()
                        elif frame.request_id in ch.abandoned:
                            ch.abandoned.discard(frame.request_id)
                        else:
                            raise FrameError(
                                f"response to unknown request id {frame.request_id}")
            except FrameError as exc:
                self._stats(ch.protocol).frames_refused += 1
                log.warning("%s: refused frame, closing: %s", ch.describe(), exc)
                error = StreamFailed(f"{ch.describe()}: {exc}")
            except StreamFailed as exc:
                error = StreamFailed(f"{ch.describe()}: {exc}")
        await self._fail(ch, error or StreamFailed(f"{ch.describe()}: closed"))

    # ------------------------------------------------------------------ inbound

    async def _serve_inbound(self, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id.to_base58()
        protocol = str(stream.get_protocol())
        handler = self._handlers.get(protocol)
        if handler is None or not self._is_allowed(peer):
            # The security transport already refuses unknown peers; this is a second lock.
            log.warning("refused %s stream from %s: %s", protocol, peer,
                        "no handler" if handler is None else "peer not in the allowlist")
            await self._reset(stream, f"{protocol} stream from {peer}")
            return
        stats = self._stats(protocol)
        stats.streams_accepted += 1
        write_lock = trio.Lock()
        slots = trio.Semaphore(limits.HANDLERS_INFLIGHT_PER_STREAM_MAX)
        decoder = FrameDecoder()
        where = f"{protocol} stream from {peer}"
        try:
            async with trio.open_nursery() as nursery:
                try:
                    while True:
                        for frame in await _read_frames_into(stream, decoder):
                            if frame.kind is FrameKind.REQUEST:
                                stats.requests_in += 1
                                await slots.acquire()
                                nursery.start_soon(self._answer, stream, write_lock, slots,
                                                   handler, peer, protocol, frame,
                                                   nursery.cancel_scope)
                            elif frame.kind is FrameKind.ONEWAY:
                                stats.oneway_in += 1
                                await self._run_oneway(handler, peer, protocol, frame)
                            else:
                                raise FrameError(f"unexpected {frame.kind.name} frame on an "
                                                 "inbound stream")
                except FrameError as exc:
                    stats.frames_refused += 1
                    log.warning("%s: refused frame, closing: %s", where, exc)
                except StreamFailed as exc:
                    log.debug("%s ended: %s", where, exc)
                nursery.cancel_scope.cancel()
        finally:
            await self._reset(stream, where)

    async def _run_handler(self, handler: Handler, peer: str, protocol: str, frame: Frame
                           ) -> bytes:
        """The response frame for `frame` (RESPONSE or ERROR); never raises Exception."""
        stats = self._stats(protocol)
        try:
            with trio.fail_after(limits.HANDLER_TIMEOUT_S):
                result = await handler(peer, frame.payload)
            return encode_frame(FrameKind.RESPONSE, frame.request_id, result or b"")
        except trio.TooSlowError:
            stats.handler_errors += 1
            log.warning("%s handler timed out on a request from %s", protocol, peer)
            return encode_error(frame.request_id,
                                f"handler timed out after {limits.HANDLER_TIMEOUT_S} s")
        except PayloadTooLarge as exc:
            stats.handler_errors += 1
            return encode_error(frame.request_id, f"response too large: {exc}")
        except Exception as exc:
            stats.handler_errors += 1
            log.warning("%s handler failed on a request from %s: %s: %s", protocol, peer,
                        type(exc).__name__, exc, exc_info=True)
            return encode_error(frame.request_id, f"{type(exc).__name__}: {exc}")

    async def _answer(self, stream: INetStream, write_lock: trio.Lock, slots: trio.Semaphore,
                      handler: Handler, peer: str, protocol: str, frame: Frame,
                      serve_scope: trio.CancelScope) -> None:
        try:
            data = await self._run_handler(handler, peer, protocol, frame)
        finally:
            slots.release()
        async with write_lock:
            completed = False
            try:
                with trio.move_on_after(limits.FRAME_WRITE_TIMEOUT_S):
                    await stream.write(data)
                    completed = True
            except _STREAM_ERRORS as exc:
                log.debug("%s: cannot answer %s: %s", protocol, peer, exc)
            finally:
                if not completed:
                    serve_scope.cancel()  # frame boundary lost or stream dead: close it

    async def _run_oneway(self, handler: Handler, peer: str, protocol: str, frame: Frame
                          ) -> None:
        try:
            with trio.fail_after(limits.HANDLER_TIMEOUT_S):
                await handler(peer, frame.payload)
        except trio.TooSlowError:
            self._stats(protocol).handler_errors += 1
            log.warning("%s one-way handler timed out on a message from %s", protocol, peer)
        except Exception as exc:
            self._stats(protocol).handler_errors += 1
            log.warning("%s one-way handler failed on a message from %s: %s: %s", protocol,
                        peer, type(exc).__name__, exc, exc_info=True)


def frame_payload_check(payload: bytes) -> None:
    if len(payload) > limits.FRAME_PAYLOAD_BYTES_MAX:
        raise PayloadTooLarge(f"payload of {len(payload)} bytes exceeds the frame limit of "
                              f"{limits.FRAME_PAYLOAD_BYTES_MAX}")
