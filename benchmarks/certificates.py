"""The cost of the majority evidence per block (ADR 0019): bytes, µs to sign and to verify, and
the latency a follower adds waiting for the orderers' attestations.

- bytes: an attestation (one orderer's gossip message per block) and a commit certificate as
  stored and served with a block, holding a majority's signatures or every orderer's, for 4
  and 7 orderers (institution ids of the demo consortium's length, "bank.icbc-qd");
- sign: `certificates.attest` (one Ed25519 signature over the domain-separated message);
- verify: `decode_certificate` + `check_certificate` of a majority certificate (what a follower
  does per block; it verifies until a majority is reached), public keys already parsed (the
  node keeps them cached, protocol/crypto.py);
- latency (--latency): an in-process cluster (tests/node/cluster.py: 4 banks ordering, 3
  followers, in-memory network) commits transactions one by one; for each block, the time
  from the leader applying it to every follower having applied it. Run it on the code before
  the change too (PYTHONPATH=<old tree>) to compare: the script needs only tests/node there.

Each figure is the median of many runs.

    .venv/bin/python benchmarks/certificates.py                 # a few seconds
    .venv/bin/python benchmarks/certificates.py --latency --blocks 40
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def crypto_figures(runs: int) -> None:
    from protocol import crypto
    from protocol.ledger.state import active_public_key  # noqa: F401  (same lookup as nodes)
    from protocol.replica import certificates as certs

    chain_id = "crossbill-devnet"
    block_hash = crypto.hash_domain(b"bench", b"block")
    height = 123_456
    print(f"commit certificates: median of {runs} runs")
    for n in (4, 7):
        names = tuple(f"bank.o{i:02d}-qd" for i in range(n))  # 12 chars like bank.icbc-qd
        keys = {name: crypto.PrivateKey(crypto.hash_domain(b"bench-key", name.encode()))
                for name in names}
        pub = {(name, k.key_id): k.public_key for name, k in keys.items()}

        def key_of(signer: str, key_id: bytes, pub: dict = pub) -> bytes | None:  # type: ignore[type-arg]
            return pub.get((signer, key_id))

        atts = [certs.attest(keys[name], name, chain_id, height, block_hash) for name in names]
        block = atts[0].block
        need = certs.majority(n)
        maj = certs.merge(block, [a.sig for a in atts[:need]])
        full = certs.merge(block, [a.sig for a in atts])
        maj_bytes = certs.encode_certificate(maj)
        sign_s: list[float] = []
        for _ in range(runs):
            t = time.perf_counter()
            certs.attest(keys[names[0]], names[0], chain_id, height, block_hash)
            sign_s.append(time.perf_counter() - t)
        verify_s: list[float] = []
        for _ in range(runs):
            t = time.perf_counter()
            verdict = certs.check_certificate(
                certs.decode_certificate(maj_bytes), chain_id=chain_id, height=height,
                block_hash=block_hash, orderers=names, key_of=key_of)
            verify_s.append(time.perf_counter() - t)
            assert verdict.ok
        one_s: list[float] = []
        msg = certs.signing_message(block)
        for _ in range(runs):
            t = time.perf_counter()
            crypto.verify(keys[names[0]].public_key, msg, atts[0].sig.signature)
            one_s.append(time.perf_counter() - t)
        print(f"  {n} orderers (majority {need}):")
        print(f"    attestation (gossip message)      "
              f"{len(certs.encode_attestation(atts[0])):>6} bytes")
        print(f"    certificate, majority signatures  {len(maj_bytes):>6} bytes")
        print(f"    certificate, all {n} signatures     "
              f"{len(certs.encode_certificate(full)):>6} bytes")
        print(f"    sign an attestation               {statistics.median(sign_s) * 1e6:>8.1f} us")
        print(f"    one signature check               {statistics.median(one_s) * 1e6:>8.1f} us")
        print(f"    decode + verify a certificate     "
              f"{statistics.median(verify_s) * 1e6:>8.1f} us")


async def _latency(blocks: int) -> None:
    import trio

    from node.cli.demo import headline_steps
    from node.keys import generate_key
    from tests.node.cluster import cluster

    applied: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with cluster(pathlib.Path(tmp)) as c:
            for node in c.nodes.values():
                original = node.chain.apply

                def hooked(block, *args, _orig=original,  # type: ignore[no-untyped-def]
                           _name=node.institution, **kwargs):
                    result = _orig(block, *args, **kwargs)
                    applied[(_name, block.height)] = time.perf_counter()
                    return result

                node.chain.apply = hooked  # type: ignore[method-assign]
            leader = await c.wait_leader()
            followers = [n for n in c.nodes.values() if not n.is_orderer]
            done = 0
            while done < blocks:
                steps = headline_steps(c.config, c.keys, int(time.time() * 1000),
                                       generate_key())
                for step in steps:
                    node = c.nodes.get(step.tx.signer) or leader
                    if not node.intake.submit(step.tx).accepted:
                        continue
                    await node.intake.wait_committed(step.tx.id, 10)
                    height = leader.chain.height
                    with trio.fail_after(10):
                        while any(f.chain.height < height for f in followers):
                            await trio.sleep(0.001)
                    done += 1
                    if done >= blocks:
                        break
            lags = []
            for (name, h), t in applied.items():
                if name == leader.institution:
                    fs = [applied.get((f.institution, h)) for f in followers]
                    if all(x is not None for x in fs):
                        lags.append(max(fs) - t)  # type: ignore[type-var,operator]
    print("lags ms:", sorted(round(x * 1000) for x in lags)) if "-v" in sys.argv else None
    print(f"follower lag, leader applied -> every follower applied, {len(lags)} blocks: "
          f"median {statistics.median(lags) * 1e3:.2f} ms, "
          f"p90 {statistics.quantiles(lags, n=10)[-1] * 1e3:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--latency", action="store_true", help="also the in-process follower lag")
    ap.add_argument("--latency-only", action="store_true")
    ap.add_argument("--blocks", type=int, default=40)
    ap.add_argument("-v", action="store_true", help="print every lag")
    args = ap.parse_args()
    if not args.latency_only:
        crypto_figures(args.runs)
    if args.latency or args.latency_only:
        import trio

        trio.run(_latency, args.blocks)


if __name__ == "__main__":
    main()
