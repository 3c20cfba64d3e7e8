"""What node/p2p relies on in py-libp2p beyond its public interfaces (docs/adr/0016), checked
against the installed release: if an upgrade drops or reshapes one of these members, this file
fails first and names it, before a subtle failure in the gossip or reconnect tests.

Three parts: the pin itself; the one private member we call and the concrete-class members
and hooks outside py-libp2p's abstract interfaces; and a scan of node/p2p proving it touches
no other private member of py-libp2p (so the ADR's list stays complete).
"""

from __future__ import annotations

import ast
import inspect
import pathlib
import re
from importlib import metadata

import pytest
from libp2p import new_host
from libp2p.network.auto_connector import AutoConnector
from libp2p.network.config import RetryConfig
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import LifecycleError

from node.p2p import gossip as gossip_module
from node.p2p import host as host_module
from tests.p2p.conftest import make_node, new_key

ROOT = pathlib.Path(__file__).resolve().parents[2]
PINNED = "0.8.1"
# The private members of py-libp2p that node/ may use: each is described in docs/adr/0016.
ALLOWED_PRIVATE = {"_handle_dead_peer"}


def _params(fn: object) -> list[str]:
    return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the pin


def test_the_installed_release_is_the_pinned_one() -> None:
    assert metadata.version("libp2p") == PINNED, (
        "py-libp2p is not the release docs/adr/0016 was checked against: re-check every "
        "member listed there (this file) before changing the pin")
    assert f'"libp2p=={PINNED}"' in (ROOT / "pyproject.toml").read_text()
    for lock in ("runtime.txt", "dev.txt"):
        text = (ROOT / "deploy" / "lock" / lock).read_text()
        assert re.findall(r"^libp2p==(\S+)", text, re.MULTILINE) == [PINNED], lock


# ---------------------------------------------------------------------- the private member


def test_pubsub_handle_dead_peer_keeps_its_shape() -> None:
    """gossip.refresh_peer and _Pubsub.stream_handler call `Pubsub._handle_dead_peer(peer)`:
    synchronous, one peer id, drops the peer's stream, subscriptions and router state."""
    fn = Pubsub._handle_dead_peer
    assert not inspect.iscoroutinefunction(fn)
    assert _params(fn) == ["self", "peer_id"]


async def test_pubsub_handle_dead_peer_forgets_a_peer_that_is_gone() -> None:
    host = new_host(key_pair=new_key())
    router = GossipSub(protocols=[PROTOCOL_ID_V11], degree=3, degree_low=2, degree_high=4)
    pubsub = Pubsub(host, router)
    peer = ID.from_pubkey(new_key().public_key)
    pubsub.peers[peer] = object()  # type: ignore[assignment]  # a stream: never touched
    pubsub.peer_topics["t"] = {peer}
    router.mesh["t"] = {peer}
    pubsub._handle_dead_peer(peer)  # not connected: removed, and no re-registration task
    assert peer not in pubsub.peers
    assert "t" not in pubsub.peer_topics
    assert peer not in router.mesh["t"]


# ---------------------------------------------------------------------- public, not interface


async def test_pubsub_manager_is_reached_through_get_manager() -> None:
    """gossip.refresh_peer asks `get_manager().is_running` (it used to read `_manager`)."""
    host = new_host(key_pair=new_key())
    pubsub = Pubsub(host, GossipSub(protocols=[PROTOCOL_ID_V11], degree=3, degree_low=2,
                                    degree_high=4))
    with pytest.raises(LifecycleError):
        pubsub.get_manager()  # not running yet: refresh_peer returns early


def test_pubsub_hooks_we_override_are_still_called() -> None:
    """_Pubsub overrides `notify_subscriptions` (every accepted message, once) and
    `stream_handler` (the handler Pubsub registers for its protocols), and calls
    `continuously_read_stream`; it reads `peers` and `peer_topics`."""
    assert _params(Pubsub.notify_subscriptions) == ["self", "publish_message"]
    assert "self.notify_subscriptions(msg)" in inspect.getsource(Pubsub.push_msg)
    assert _params(Pubsub.stream_handler) == ["self", "stream"]
    assert "set_stream_handler(protocol, self.stream_handler)" in inspect.getsource(
        Pubsub.__init__)
    assert inspect.iscoroutinefunction(Pubsub.continuously_read_stream)
    assert _params(Pubsub.continuously_read_stream) == ["self", "stream"]
    assert {"peers", "peer_topics"} <= set(inspect.get_annotations(Pubsub))
    assert "mesh" in inspect.get_annotations(GossipSub)
    assert issubclass(gossip_module._Pubsub, Pubsub)


def test_swarm_members_we_set_or_call() -> None:
    """P2PNode sets `retry_config` (no retries inside a dial), replaces the instance's
    `auto_connector.maybe_connect` (we are the only dialler) and calls `unblock_peer` before
    each dial; py-libp2p must still read them where it did."""
    assert "retry_config" in inspect.get_annotations(Swarm)
    assert "self.retry_config.max_retries" in inspect.getsource(Swarm)
    assert RetryConfig(max_retries=0).max_retries == 0
    assert "auto_connector" in inspect.get_annotations(Swarm)
    assert inspect.iscoroutinefunction(AutoConnector.maybe_connect)
    assert "self.auto_connector.maybe_connect" in inspect.getsource(Swarm)
    assert "await self.maybe_connect()" in inspect.getsource(AutoConnector)
    assert _params(Swarm.unblock_peer) == ["self", "peer_id"]
    assert not inspect.iscoroutinefunction(Swarm.unblock_peer)


def test_noise_transport_we_subclass() -> None:
    assert _params(NoiseTransport.__init__)[:2] == ["self", "libp2p_keypair"]
    assert "noise_privkey" in _params(NoiseTransport.__init__)
    assert _params(NoiseTransport.secure_inbound) == ["self", "conn"]
    assert _params(NoiseTransport.secure_outbound) == ["self", "conn", "peer_id"]


def test_a_p2p_node_wires_all_of_it() -> None:
    node = make_node(new_key(), {})
    network = node.host.get_network()
    assert isinstance(network, Swarm)
    assert network.retry_config.max_retries == 0
    assert network.auto_connector.maybe_connect is host_module._no_auto_connect


# ---------------------------------------------------------------------- nothing else


def _libp2p_private_uses() -> dict[str, list[str]]:
    """Private attributes node/p2p reads that node/ itself does not define, and private
    libp2p modules or names it imports: {member: ["file:line", ...]}."""
    ours: set[str] = set()
    trees = {}
    for path in sorted((ROOT / "node").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        trees[path] = tree
        for n in ast.walk(tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                ours.add(n.name)
            elif isinstance(n, (ast.Assign, ast.AnnAssign)):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                for t in targets:
                    if isinstance(t, ast.Attribute):
                        ours.add(t.attr)
                    elif isinstance(t, ast.Name):
                        ours.add(t.id)
    found: dict[str, list[str]] = {}
    for path, tree in trees.items():
        if path.parent.name != "p2p":
            continue
        where = f"{path.relative_to(ROOT)}"
        for n in ast.walk(tree):
            name = ""
            if isinstance(n, ast.Attribute):
                name = n.attr
            elif isinstance(n, ast.Call) and getattr(n.func, "id", "") in (
                    "getattr", "setattr", "hasattr") and len(n.args) > 1 \
                    and isinstance(n.args[1], ast.Constant):
                name = str(n.args[1].value)
            elif isinstance(n, ast.ImportFrom) and (n.module or "").startswith("libp2p"):
                parts = (n.module or "").split(".") + [a.name for a in n.names]
                name = next((p for p in parts if p.startswith("_")), "")
            private_import = isinstance(n, ast.ImportFrom) and bool(name)
            if private_import or (name.startswith("_") and not name.startswith("__")
                                  and name not in ours):
                found.setdefault(name, []).append(f"{where}:{n.lineno}")
    return found


def test_node_uses_no_other_private_libp2p_member() -> None:
    found = _libp2p_private_uses()
    assert set(found) == ALLOWED_PRIVATE, (
        f"private py-libp2p members used by node/p2p: {found}; each needs an entry in "
        "docs/adr/0016 and a check in this file")
