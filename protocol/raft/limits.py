"""Every bound of the Raft core, with its unit last in the name.

Ceilings (``*_MAX``) are enforced on the wire and on `RaftConfig`; defaults (``*_DEFAULT``)
are what a node uses unless its configuration says otherwise. Sizes count entry payload bytes
(`Entry.data`), not encoded bytes: the canonical encoding writes bytes as hexadecimal, so an
encoded message is about twice its payload; the ceilings below keep the largest message under
`protocol.limits.MESSAGE_BYTES_MAX` (4 MiB).
"""

from typing import Final

from protocol import limits as _base

# --- membership -------------------------------------------------------------------------------
# Voters plus learners in one configuration.
MEMBERS_MAX: Final = 16
NODE_ID_MAX: Final = _base.INT_MAX

# --- entries and snapshots --------------------------------------------------------------------
# One entry carries one block (BLOCK_BYTES_MAX = 900 KiB) plus room for its envelope.
ENTRY_BYTES_MAX: Final = 1024 * 1024
# Snapshot payload carried inside one InstallSnapshot message (opaque to Raft; the ledger puts
# a reference such as height and state root there and moves bulk state over block sync).
SNAPSHOT_BYTES_MAX: Final = 1024 * 1024
# Encoded config-change entry data.
CONF_CHANGE_BYTES_MAX: Final = 256

# --- replication flow control -----------------------------------------------------------------
# Entries in one AppendRequest (ceiling on the wire and default).
APPEND_ENTRIES_MAX: Final = 256
APPEND_ENTRIES_DEFAULT: Final = 64
# Payload bytes in one AppendRequest; a single larger entry is still sent alone.
APPEND_BYTES_MAX: Final = 1024 * 1024
APPEND_BYTES_DEFAULT: Final = 512 * 1024
# AppendRequests in flight (sent, not yet acknowledged) to one follower.
INFLIGHT_MSGS_MAX: Final = 256
INFLIGHT_MSGS_DEFAULT: Final = 16
# Payload bytes in flight to one follower.
INFLIGHT_BYTES_MAX: Final = 64 * 1024 * 1024
INFLIGHT_BYTES_DEFAULT: Final = 8 * 1024 * 1024
# Payload bytes the leader accepts beyond its commit index before dropping proposals.
UNCOMMITTED_BYTES_MAX: Final = 256 * 1024 * 1024
UNCOMMITTED_BYTES_DEFAULT: Final = 32 * 1024 * 1024
# Committed entries handed to the application in one Ready.
APPLY_ENTRIES_MAX: Final = 4096
APPLY_ENTRIES_DEFAULT: Final = 1024

# --- time (abstract ticks; the node decides how long a tick is) -------------------------------
ELECTION_TIMEOUT_TICKS: Final = 10
HEARTBEAT_INTERVAL_TICKS: Final = 1
ELECTION_TIMEOUT_TICKS_MAX: Final = 10_000
# A snapshot not acknowledged after this many election timeouts is sent again.
SNAPSHOT_RETRY_ELECTIONS: Final = 1
# Quiet mode (docs/adr/0037): an idle leader heartbeats once per election timeout, and a quiet
# follower's election timeout and leader lease, and a quiet leader's CheckQuorum period, are
# this many election timeouts (a multiplier of election_timeout_ticks, so in election
# timeouts). At least 2: a quiet timeout must outlast the quiet heartbeat interval (one
# election timeout) with room for a lost heartbeat.
QUIET_TIMEOUT_FACTOR: Final = 3
QUIET_TIMEOUT_FACTOR_MIN: Final = 2
QUIET_TIMEOUT_FACTOR_MAX: Final = 10
# A quiet node's clock may deliver this many ticks at once (`Raft.ticks_until_due`): the node
# then wakes for Raft a few times a second instead of once per tick (ADR 0037).
QUIET_TICKS_PER_WAKE_MAX: Final = 10
