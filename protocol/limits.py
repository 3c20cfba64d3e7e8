"""Every bound Crossbill enforces, in one place, with its unit last in the name.

A bound that is not here is a bug: queues, message sizes, batch sizes, caches and retries are
all named below. Consortium parameters in the genesis file (block limits, advance rate, ...)
must lie inside the ceilings set here; the loader refuses a genesis file that breaks one.
"""

from typing import Final

# --- canonical encoding ---------------------------------------------------------------------
CODEC_VERSION: Final = 1
# Any single encoded object (the largest is a block) is refused above this size before parsing.
MESSAGE_BYTES_MAX: Final = 4 * 1024 * 1024
# A list inside an encoded object that does not name its own bound.
LIST_ITEMS_MAX: Final = 1024
# A string field that does not name its own bound (UTF-8 characters).
STRING_CHARS_MAX: Final = 256
# A bytes field that does not name its own bound.
BYTES_LEN_MAX: Final = 256
# Integers are signed 64-bit on the wire so that every client language can hold them.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1

# --- identifiers ----------------------------------------------------------------------------
CHAIN_ID_CHARS_MAX: Final = 64
INSTITUTION_ID_CHARS_MAX: Final = 64
RECORD_ID_CHARS_MAX: Final = 64  # declaration, form, financing, payment and entry numbers
NAME_CHARS_MAX: Final = 200
TEXT_CHARS_MAX: Final = 1000  # goods descriptions, reasons
USCC_CHARS: Final = 18  # unified social credit code of an enterprise
CURRENCY_CHARS: Final = 3  # ISO 4217
COUNTRY_CHARS: Final = 2  # ISO 3166-1 alpha-2

# --- keys, hashes and signatures ------------------------------------------------------------
HASH_BYTES: Final = 32
PUBLIC_KEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64
KEY_ID_BYTES: Final = 8
NONCE_BYTES_MIN: Final = 8
NONCE_BYTES_MAX: Final = 32
KEYS_PER_INSTITUTION_MAX: Final = 8
# --- sealed (encrypted) fields, ADR 0024 -------------------------------------------------------
ENCRYPTION_KEY_BYTES: Final = 32  # X25519 public key
DATA_KEY_BYTES: Final = 32  # AES-256-GCM key, fresh per sealed record version
SEALED_NONCE_BYTES: Final = 12  # AES-GCM nonce
SEALED_TAG_BYTES: Final = 16  # AES-GCM tag, at the end of the ciphertext
SEALED_SALT_BYTES: Final = 16  # random salt inside every plain text (no guessing by hash)
# A sealed box (libsodium crypto_box_seal) of a 32-byte key: 32-byte ephemeral key, 16-byte MAC.
WRAPPED_KEY_BYTES: Final = 80
SEALED_CIPHERTEXT_BYTES_MAX: Final = 3072
SEALED_RECIPIENTS_MAX: Final = 8  # parties one sealed record is wrapped to
PARTY_CHARS_MAX: Final = 64  # an institution id, a USCC, or "file/<USCC>"
# Readers of one credit-file key epoch (so that a revocation fits in TX_BYTES_MAX).
CREDIT_FILE_WRAPS_MAX: Final = 24
CREDIT_FILE_EPOCHS_PER_GRANT_MAX: Final = 8  # file-key epochs one consent may disclose
CREDIT_FILE_EPOCHS_LISTED_MAX: Final = 64  # newest file-key epochs a read returns
CREDIT_READS_LIST_MAX: Final = 500  # credit reads one audit query returns
CREDIT_READS_SCAN_MAX: Final = 20_000  # credit reads one audit query looks at
# scrypt work factor for key files, as log2(N). Files weaker than the minimum are refused.
KEYFILE_SCRYPT_LOG_N_MIN: Final = 14
KEYFILE_SCRYPT_LOG_N_DEFAULT: Final = 15
KEYFILE_SCRYPT_LOG_N_MAX: Final = 20
KEYFILE_BYTES_MAX: Final = 4096
PASSPHRASE_BYTES_MAX: Final = 1024

# --- amounts --------------------------------------------------------------------------------
# Minor units (cents). 10^15 cents is ten trillion units of any currency; sums of bounded
# amounts stay far inside INT_MAX.
AMOUNT_MINOR_MAX: Final = 10**15
# Advance rate in basis points of a declaration's outstanding value (9000 = 90%).
ADVANCE_RATE_BPS_MAX: Final = 10_000
# A reference exchange rate (docs/domain.md §2): minor units of the quote currency per minor
# unit of the base currency, times 10^8. At most 10^6 quote minor units per base minor unit.
FX_RATE_E8_MAX: Final = 10**14
# The rate of the day is the one dated the block's (UTC) date or, failing that, the latest one
# at most this many days older (a Friday rate serves the weekend and a holiday Monday).
FX_RATE_STALE_DAYS_MAX: Final = 4
# A rate may be published for a date at most this many days after the block's date.
FX_RATE_AHEAD_DAYS_MAX: Final = 7

# --- transactions ---------------------------------------------------------------------------
TX_BYTES_MAX: Final = 8 * 1024
PLEDGES_PER_FINANCING_MAX: Final = 16
# A transaction names when it expires; that moment may lie at most this far past the block
# time, which bounds how long the ledger must remember a (signer, nonce) pair.
TX_EXPIRY_WINDOW_MS_MAX: Final = 24 * 60 * 60 * 1000

# --- ledger records ---------------------------------------------------------------------------
SERVING_BANKS_MAX: Final = 64  # banks serving one enterprise
REPAYMENTS_PER_FINANCING_MAX: Final = 256
# Open pledges on one declaration (bounds the financings a cut of its collateral touches).
PLEDGES_PER_DECLARATION_MAX: Final = 16
# Financings of one enterprise that hold pledges or owe money (bounds its exposure query).
ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX: Final = 256
# Flag records kept on a financing (older ones are dropped; the count and history keep all).
FLAGS_PER_FINANCING_MAX: Final = 32

# --- time in the ledger (docs/domain.md §4.2; ADR 0017) ----------------------------------------
# A declaration's export date may lie at most this far after the block time (time zones).
EXPORT_DATE_AHEAD_MS_MAX: Final = 24 * 60 * 60 * 1000
# A financing's maturity lies at most this far after the block time that opens it.
FINANCING_TENOR_MS_MAX: Final = 366 * 24 * 60 * 60 * 1000
# How far ahead of the block time an application, a mandate or a payment review may expire.
APPLICATION_VALIDITY_MS_MAX: Final = 90 * 24 * 60 * 60 * 1000
MANDATE_VALIDITY_MS_MAX: Final = 366 * 24 * 60 * 60 * 1000
REVIEW_VALIDITY_MS_MAX: Final = 30 * 24 * 60 * 60 * 1000
# Time-driven transitions (lapse, overdue, application expiry) applied at the start of one
# block; the rest wait for the next block (the rules never depend on them being processed).
DUE_TRANSITIONS_PER_BLOCK_MAX: Final = 1_000
# Consortium parameters changeable by `params.set` (and set at genesis) lie in these bounds.
FINANCING_LAPSE_MS_MIN: Final = 60 * 1000
FINANCING_LAPSE_MS_MAX: Final = 90 * 24 * 60 * 60 * 1000
RECEIVABLE_AGE_MS_MIN: Final = 24 * 60 * 60 * 1000
RECEIVABLE_AGE_MS_MAX: Final = 2 * 365 * 24 * 60 * 60 * 1000
CLASS_B_TENOR_MS_MIN: Final = 24 * 60 * 60 * 1000
CLASS_B_TENOR_MS_MAX: Final = FINANCING_TENOR_MS_MAX
# The leader cuts an empty block when this long passed since the last one (the heartbeat);
# ADR 0017 §4 gives its cost. Never below the block interval.
HEARTBEAT_INTERVAL_MS_MIN: Final = 1_000
HEARTBEAT_INTERVAL_MS_MAX: Final = 60 * 60 * 1000

# --- queries --------------------------------------------------------------------------------
# Items in one page of a list query (declarations by exporter, a bank's book, the watch list).
QUERY_PAGE_ITEMS_MAX: Final = 500
# Financings counted per watch list (flagged, overdue) for the node's gauges; a list longer
# than this reads as this many (recounted only after a block that changed the list).
WATCH_COUNT_ITEMS_MAX: Final = 100_000
# Expired (signer, nonce) entries pruned per block; the rest wait for the next block (replay
# checks already ignore expired entries, so this only bounds the work of one block).
NONCE_PRUNE_PER_BLOCK_MAX: Final = 20_000
# Keys written to a ledger overlay since its last sort that a range read scans one by one; more
# are sorted into its key list first (protocol/ledger/kv.py).
OVERLAY_FRESH_KEYS_MAX: Final = 64
# Decoded ledger records kept in the per-process decode cache, oldest evicted first. About 1.8 KB
# each (the bytes and the objects): 65,536 held 117 MB per node once full, for 1,800 fewer
# decodes per 8,000 transactions than 4,096 entries (7 MB) save (ADR 0032).
DECODED_RECORDS_CACHE_MAX: Final = 4_096

# --- blocks ---------------------------------------------------------------------------------
BLOCK_TXS_MAX: Final = 10_000
# Gossip drops payloads near 1 MiB (docs/building-blocks.md); a block is one gossip message.
BLOCK_BYTES_MAX: Final = 900 * 1024
BLOCK_INTERVAL_MS_MAX: Final = 10_000
BLOCK_INTERVAL_MS_MIN: Final = 1
# Commit certificates (protocol/replica/certificates.py, ADR 0019): one signature per orderer
# at most, an encoded certificate or attestation never larger than these; followers pool the
# attestations of at most this many heights ahead of their tip.
CERT_SIGNATURES_MAX: Final = 9  # = ORDERERS_MAX (below): one signature per orderer
CERT_BYTES_MAX: Final = 4096
ATTESTATION_BYTES_MAX: Final = 1024
ATTESTATION_POOL_AHEAD_BLOCKS: Final = 1024

# --- ordering (protocol/replica/, node/replica/ordering.py) ----------------------------------
# Room left in a block for its header, signature and encoding when the leader reaps pending
# transactions: it takes at most `block_bytes_max` minus this many encoded transaction bytes.
BLOCK_OVERHEAD_BYTES: Final = 4096
# The leader promotes a learner once the learner's match index is within this many entries of
# the leader's last index (Raft itself still refuses a learner short of the commit index).
LEARNER_CATCH_UP_ENTRIES: Final = 8

# --- consortium configuration ---------------------------------------------------------------
GENESIS_BYTES_MAX: Final = 1024 * 1024
INSTITUTIONS_MAX: Final = 256
ORDERERS_MAX: Final = 9
NODE_ADDRESSES_MAX: Final = 8
ADDRESS_CHARS_MAX: Final = 256

# network description (node/cli/netinit.py) -------------------------------------------------------
# `crossbill network init` reads one TOML file describing every institution and its node.
NETWORK_DESCRIPTION_BYTES_MAX: Final = 256 * 1024
# Every institution of the genesis file may run a node; each gets an scrypt-sealed key at init.
NETWORK_INSTITUTIONS_MAX: Final = INSTITUTIONS_MAX
# Node ports (p2p, RPC, metrics): the hardened service has no capabilities, so no port < 1024.
NODE_PORT_MIN: Final = 1024
NODE_PORT_MAX: Final = 65535

# operations (node/storage/backup.py, node/cli/ops.py) ------------------------------------
# A backup name is one directory under [node] backup_dir: [A-Za-z0-9._-], not starting with ".".
BACKUP_NAME_CHARS_MAX: Final = 64
# Keys per synced write batch when a backup writes its new LevelDB.
BACKUP_WRITE_BATCH_KEYS: Final = 10_000
# How often a backup worker thread looks whether its RPC call was cancelled (node shutdown).
BACKUP_CANCEL_CHECK_KEYS: Final = 2_000
# A backup's manifest.json is refused above this size before parsing.
BACKUP_MANIFEST_BYTES_MAX: Final = 64 * 1024
# `crossbill ledger check` prints a progress line at most this often.
LEDGER_CHECK_PROGRESS_INTERVAL_S: Final = 2

# transaction intake (node/replica/intake.py, protocol/replica/forwarding.py) ---------------
# Client transactions a node took and has not yet seen committed; it answers for each (sends
# it on again) until it does, and refuses new ones with MEMPOOL_FULL while this many wait.
INTAKE_AWAITING_TXS_MAX: Final = 20_000
# One that no orderer took (none reachable, a full mempool) is sent again after this pause.
REFORWARD_REFUSED_MS: Final = 5_000
# One an orderer took but that is still not committed is sent again after this: a last resort.
REFORWARD_AFTER_MS: Final = 120_000
# How often the intake asks which transactions are due to be sent again.
REFORWARD_CHECK_MS: Final = 1_000

# protocol versions (protocol/versions.py, ADR 0025) ----------------------------------------
# Version numbers count from 1 (genesis); each activation names the next one.
PROTOCOL_VERSION_MAX: Final = 1_000
# An activation is scheduled at least this many blocks ahead of the block that schedules it,
# so every operator sees it coming (the refusal names the earliest height allowed) ...
ACTIVATION_LEAD_BLOCKS_MIN: Final = 10
# ... and at most this many (about four months of one-minute heartbeat blocks).
ACTIVATION_LEAD_BLOCKS_MAX: Final = 200_000
# Activations the ledger keeps (every version ever activated or pending, in order).
PROTOCOL_ACTIVATIONS_MAX: Final = PROTOCOL_VERSION_MAX

# issue 17: export credit-insurance policies (protocol/ledger/handlers_insurance.py) ---------
# A policy expires at most this long after the block that registers it (three years: medium-
# term export credit cover; short-term cover is a year or less).
POLICY_VALIDITY_MS_MAX: Final = 3 * 366 * 24 * 60 * 60 * 1000
# Banks a policy's indemnity rights may be assigned to (each holds the details' data key).
POLICY_ASSIGNEES_MAX: Final = 8
# Buyers named in a policy's sealed details (eight names and a full note still seal within
# SEALED_CIPHERTEXT_BYTES_MAX, and the transaction within TX_BYTES_MAX).
POLICY_BUYERS_MAX: Final = 8
# The premium rate in a policy's sealed details, in basis points (100%).
POLICY_PREMIUM_BPS_MAX: Final = 10_000

# issue 17: capital-account income payments (protocol/ledger/handlers_capital.py) -----------
# A supporting document that expires does so at most this long after the block registering it
# (about ten years: a foreign-debt registration's term).
DOCUMENT_VALIDITY_MS_MAX: Final = 3_660 * 24 * 60 * 60 * 1000

# issue 22: consensus timing, set by the consortium in genesis (protocol/timing.py, ADR 0030) --
# The Raft clock's period; every Raft timer is a whole number of ticks.
RAFT_TICK_MS_MIN: Final = 5
RAFT_TICK_MS_MAX: Final = 1000
# A follower stands for election after this many ticks without a heartbeat (randomized up to
# twice that by the Raft core); at least a few ticks, or one late tick starts an election.
RAFT_ELECTION_TICKS_MIN: Final = 3
RAFT_ELECTION_TICKS_MAX: Final = 1000
# The election timeout in time (tick times election ticks): not so short that a scheduling
# hiccup deposes the leader, not so long that a dead leader stalls the network for minutes.
RAFT_ELECTION_TIMEOUT_MS_MIN: Final = 100
RAFT_ELECTION_TIMEOUT_MS_MAX: Final = 120_000
RAFT_HEARTBEAT_TICKS_MIN: Final = 1
RAFT_HEARTBEAT_TICKS_MAX: Final = 100
# One request to a peer (forwarding transactions, asking for blocks) and one Raft message send.
REQUEST_TIMEOUT_MS_MIN: Final = 100
REQUEST_TIMEOUT_MS_MAX: Final = 60_000
RAFT_SEND_TIMEOUT_MS_MIN: Final = 100
RAFT_SEND_TIMEOUT_MS_MAX: Final = 60_000
# Blocks asked for in one block-sync request (a served range is also capped in bytes).
BLOCK_SYNC_BATCH_BLOCKS_MIN: Final = 1
BLOCK_SYNC_BATCH_BLOCKS_MAX: Final = 512
# How often a node that follows asks its peers for their tips when gossip is quiet.
BLOCK_SYNC_POLL_MS_MIN: Final = 50
BLOCK_SYNC_POLL_MS_MAX: Final = 60_000
# The round-trip times `timing_for_rtt` chooses timing for.
TIMING_RTT_MS_MAX: Final = 5000

# --- record proofs (protocol/ledger/smt.py `StateProof`, ADR 0035) ---------------------------
# A state key's path is 64 nibbles: a proof names at most one tree node per nibble.
STATE_PROOF_DEPTH_NIBBLES_MAX: Final = 64
# One node on the path: the hashes of its 15 children off the path, in nibble order.
STATE_PROOF_SIBLINGS_BYTES: Final = 15 * HASH_BYTES
