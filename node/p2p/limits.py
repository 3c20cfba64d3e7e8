"""Every bound of the networking layer, with its unit last in the name.

These are node-local (they never affect consensus), so they live here rather than in
`protocol.limits`; the ones derived from protocol bounds say so. A bound that is not named here
is a bug: queues, frame sizes, in-flight requests, timeouts and backoffs are all below.
"""

from typing import Final

from protocol import limits as protocol_limits

# --- request/response frames ------------------------------------------------------------------
# Frame = 4-byte big-endian length of the body, then the body: kind (1 byte), request id
# (8 bytes, big-endian), payload. The length counts the body only.
FRAME_LENGTH_BYTES: Final = 4
FRAME_HEADER_BYTES: Final = 1 + 8  # kind + request id, inside the body
# The largest payload of one frame: the largest encoded object the protocol allows (a block
# range response is several blocks; its encoder must stay under this).
FRAME_PAYLOAD_BYTES_MAX: Final = protocol_limits.MESSAGE_BYTES_MAX
# The largest body a reader accepts; anything larger closes the stream before it is buffered.
FRAME_BODY_BYTES_MAX: Final = FRAME_HEADER_BYTES + FRAME_PAYLOAD_BYTES_MAX
# Error frames carry a UTF-8 reason, truncated to this.
ERROR_MESSAGE_BYTES_MAX: Final = 512
# How much one read asks the stream for (yamux hands out at most 64 KiB frames anyway).
STREAM_READ_CHUNK_BYTES: Final = 256 * 1024

# --- request/response concurrency and deadlines ---------------------------------------------------
# Requests awaiting a response on one outbound stream; the next request fails fast beyond it.
REQUESTS_INFLIGHT_PER_STREAM_MAX: Final = 64
# Request handlers running at once for one inbound stream; the reader waits beyond it (TCP
# back-pressure on the requester rather than an unbounded task pile).
HANDLERS_INFLIGHT_PER_STREAM_MAX: Final = 16
# The deadline a caller may ask for at most (callers pass their own, smaller, deadline).
REQUEST_TIMEOUT_S_MAX: Final = 120.0
# One handler call (request or one-way) may take this long before it is cancelled.
HANDLER_TIMEOUT_S: Final = 30.0
# Opening a stream (including a dial if the peer is not connected and protocol negotiation).
STREAM_OPEN_TIMEOUT_S: Final = 10.0
# Writing one frame (a frozen peer stops granting yamux window; we give up and reset).
FRAME_WRITE_TIMEOUT_S: Final = 10.0
# Registered request/response protocols.
PROTOCOLS_MAX: Final = 16
PROTOCOL_ID_CHARS_MAX: Final = 128

# --- gossip ---------------------------------------------------------------------------------------
# py-libp2p 0.8.1 refuses pubsub RPC frames above 1 MiB (rpc_queue.DefaultMaxMessageSize, both on
# send and receive), and the frame also carries the topic, the origin's key and signature, a
# sequence number and a signed peer record. Measured on one hop: a payload of 1 MiB - 500 bytes
# is delivered, 1 MiB - 400 bytes is silently dropped (tests/p2p/test_gossip.py checks 1 MiB -
# 1 KiB passes and 1 MiB does not). Our bound leaves ample room and sits
# above a full block (protocol BLOCK_BYTES_MAX = 900 KiB).
GOSSIP_BYTES_MAX: Final = 960 * 1024
# Accepted messages waiting for the topic handler; beyond it messages are dropped and counted.
GOSSIP_DELIVERY_QUEUE_ITEMS: Final = 256
# Our own dedup of delivered message hashes (on top of libp2p's seen cache).
GOSSIP_SEEN_ITEMS_MAX: Final = 16_384
GOSSIP_SEEN_TTL_S: Final = 120
GOSSIP_TOPICS_MAX: Final = 8
TOPIC_CHARS_MAX: Final = 128

# --- gossipsub v1.1 parameters (a consortium of about 7-10 nodes) ---------------------------------
GOSSIP_DEGREE: Final = 6  # D: mesh peers per topic, about everyone in a 7-node network
GOSSIP_DEGREE_LOW: Final = 4  # D_lo: graft below this
GOSSIP_DEGREE_HIGH: Final = 9  # D_hi: prune above this
GOSSIP_HEARTBEAT_INTERVAL_S: Final = 1  # libp2p types it as an int
GOSSIP_HEARTBEAT_INITIAL_DELAY_S: Final = 0.1
GOSSIP_FANOUT_TTL_S: Final = 60
GOSSIP_WINDOW_HEARTBEATS: Final = 3  # message ids advertised in IHAVE
GOSSIP_HISTORY_HEARTBEATS: Final = 5  # messages kept for IWANT
GOSSIP_PRUNE_BACKOFF_S: Final = 10
GOSSIP_UNSUBSCRIBE_BACKOFF_S: Final = 5
# py-libp2p queues every message it publishes or forwards for each connected peer that has not
# (yet) subscribed to the topic, to flush it should the subscription come. Orderers never
# subscribe to blocks, so each follower held up to its default of 100 blocks per orderer (up to
# 900 KiB each) for 30 s, and rebuilt each queue at every message (ADR 0038). Nothing of ours
# needs that queue: a block or batch gossip misses is fetched or re-sent. (py-libp2p trims a
# queue to this bound before it appends: it holds one more at most.)
GOSSIP_PENDING_MSGS_PER_PEER_MAX: Final = 2
GOSSIP_PENDING_TTL_S: Final = 2.0

# --- connections ----------------------------------------------------------------------------------
ALLOWLIST_PEERS_MAX: Final = protocol_limits.INSTITUTIONS_MAX
CONNECTIONS_MAX: Final = 2 * protocol_limits.INSTITUTIONS_MAX
CONNECTIONS_PER_PEER_MAX: Final = 2
# One dial attempt (TCP connect + Noise handshake + yamux) to one peer.
DIAL_TIMEOUT_S: Final = 5.0
# Security + muxer upgrade of one connection, each direction.
UPGRADE_TIMEOUT_S: Final = 5.0
# Closing the host (connections, listener) when the node stops.
SHUTDOWN_TIMEOUT_S: Final = 5.0
# Reconnection backoff: the delay doubles from min to max, each wait drawn uniformly from
# [delay / 2, delay] ("equal jitter").
RECONNECT_BACKOFF_MIN_S: Final = 0.25
RECONNECT_BACKOFF_MAX_S: Final = 10.0

# --- identity -------------------------------------------------------------------------------------
NODE_KEY_SEED_BYTES: Final = 32

# A block is one gossip message; a frame carries any encoded object.
if GOSSIP_BYTES_MAX < protocol_limits.BLOCK_BYTES_MAX + 16 * 1024:
    raise RuntimeError("GOSSIP_BYTES_MAX must exceed BLOCK_BYTES_MAX with room for framing")
if FRAME_PAYLOAD_BYTES_MAX < protocol_limits.MESSAGE_BYTES_MAX:
    raise RuntimeError("FRAME_PAYLOAD_BYTES_MAX must hold the largest encoded object")
