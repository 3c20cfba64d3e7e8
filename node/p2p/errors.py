"""Errors of the networking layer. Every one carries a message an operator can act on."""


class P2PError(Exception):
    """Base of every error `node.p2p` raises to its callers."""


class PeerNotAllowed(P2PError):
    """The peer id is not in the consortium allowlist."""


class NotRunning(P2PError):
    """The node is not running (`P2PNode.run` has not signalled started, or has ended)."""


class PayloadTooLarge(P2PError):
    """A payload above the bound of its channel (frame or gossip message)."""


class FrameError(P2PError):
    """Bytes on a request/response stream that are not a valid frame; the stream is closed."""


class StreamFailed(P2PError):
    """The stream to the peer failed (could not open, reset, closed, or timed out on write);
    requests pending on it fail with this error."""


class RequestTimeout(StreamFailed, TimeoutError):
    """No response before the caller's deadline; the stream was reset."""


class TooManyInflight(P2PError):
    """The outbound stream already has the maximum number of requests awaiting responses."""


class RemoteError(P2PError):
    """The remote handler failed; the message is the reason the remote sent."""
