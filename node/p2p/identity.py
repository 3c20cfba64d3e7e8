"""The node's libp2p identity: a persistent Ed25519 key, stored as its raw 32-byte seed.

The file holds exactly the seed, created with mode 0600 and refused if anyone but the owner may
read it (as ssh does). The peer id is derived from the public key, so the same file always gives
the same peer id; `peer_id_from_seed` lets a devnet generator compute peer ids ahead of time.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import stat

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from node.files import create_private_file
from node.p2p import limits


class NodeKeyError(Exception):
    """A node key file that cannot be used; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class NodeIdentity:
    key_pair: KeyPair
    peer_id: str  # base58, as written in the genesis file


def key_pair_from_seed(seed: bytes) -> KeyPair:
    if len(seed) != limits.NODE_KEY_SEED_BYTES:
        raise NodeKeyError(
            f"an Ed25519 seed is {limits.NODE_KEY_SEED_BYTES} bytes, got {len(seed)}")
    try:
        return create_new_key_pair(seed)
    except ValueError as exc:
        raise NodeKeyError(f"unusable Ed25519 seed: {exc}") from None


def peer_id_from_seed(seed: bytes) -> str:
    """The libp2p peer id (base58) of the Ed25519 key with this seed."""
    return ID.from_pubkey(key_pair_from_seed(seed).public_key).to_base58()


def generate_seed() -> bytes:
    """A fresh seed whose public key libp2p accepts."""
    for _ in range(100):
        seed = os.urandom(limits.NODE_KEY_SEED_BYTES)
        try:
            key_pair_from_seed(seed)
        except NodeKeyError:
            continue
        return seed
    raise RuntimeError("could not generate an Ed25519 seed libp2p accepts")


def write_node_key(path: pathlib.Path, seed: bytes) -> None:
    """Create `path` with mode 0600 holding `seed`; refuses to overwrite a file."""
    key_pair_from_seed(seed)
    try:
        create_private_file(path, seed)
    except FileExistsError:
        raise NodeKeyError(f"{path} exists: refusing to overwrite a node key") from None
    except OSError as exc:
        raise NodeKeyError(f"cannot create node key {path}: {exc.strerror}") from None


def read_node_key(path: pathlib.Path) -> NodeIdentity:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise NodeKeyError(f"cannot read node key {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise NodeKeyError(f"{path} is not a regular file")
        if mode & 0o077:
            raise NodeKeyError(
                f"{path} has mode {stat.S_IMODE(mode):04o}: a node key must be readable by its "
                "owner only (chmod 600)")
        seed = f.read(limits.NODE_KEY_SEED_BYTES + 1)
    if len(seed) != limits.NODE_KEY_SEED_BYTES:
        more = " or more" if len(seed) > limits.NODE_KEY_SEED_BYTES else ""
        raise NodeKeyError(
            f"{path}: a node key file holds exactly {limits.NODE_KEY_SEED_BYTES} bytes, "
            f"this one has {len(seed)}{more}")
    key_pair = key_pair_from_seed(seed)
    return NodeIdentity(key_pair, ID.from_pubkey(key_pair.public_key).to_base58())


def load_or_create_node_key(path: pathlib.Path) -> NodeIdentity:
    """Read the node key at `path`, creating it (mode 0600) on first start."""
    if not path.exists():
        try:
            write_node_key(path, generate_seed())
        except NodeKeyError:
            if not path.exists():  # lost a race with another creator: read theirs
                raise
    return read_node_key(path)
