"""State proofs (ADR 0035): size, generation and verification time at a given number of rooted
keys, and the sizes of the encodings considered.

The state is declarations' keys with values of a declaration record's size (about 600 bytes of
canonical JSON), loaded with smt.rebuild into an in-memory store; proofs of present keys and of
absent ones are sampled. Sizes: the proof as record.proof answers it (canonical JSON, hex) and
in binary, for three forms of each node on the path: the 15 siblings (the chosen form), the 16
children (the full node), and a 16-bit bitmap of the non-empty siblings followed by them.

    .venv/bin/python benchmarks/state_proofs.py                   # 10k and 100k keys
    .venv/bin/python benchmarks/state_proofs.py --keys 1000 --samples 200
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from protocol import codec
from protocol.ledger import keys, smt
from protocol.ledger.kv import MemoryKV

VALUE_BYTES = 600


def _binary_sizes(proof: smt.StateProof) -> tuple[int, int, int]:
    """Bytes of the proof in binary: 15 siblings, full nodes, bitmap + non-empty siblings."""
    end = 64 if proof.other is not None else 0
    siblings = sum(len(s) for s in proof.siblings) + end
    full = len(proof.siblings) * 16 * 32 + end
    bitmap = sum(2 + 32 * sum(1 for i in range(0, len(s), 32) if s[i:i + 32] != smt.EMPTY_HASH)
                 for s in proof.siblings) + end
    return siblings, full, bitmap


def measure(n: int, samples: int) -> dict[str, float]:
    value = b"x" * VALUE_BYTES
    kv = MemoryKV()
    items = [(keys.declaration(f"DEC-{i:08d}"), value) for i in range(n)]
    started = time.perf_counter()
    root = smt.rebuild(kv, items)
    build_s = time.perf_counter() - started
    present = [items[i * (n // samples)][0] for i in range(samples)]
    absent = [keys.declaration(f"NONE-{i:08d}") for i in range(samples)]
    prove_us, verify_us, depth, json_bytes = [], [], [], []
    binary: list[tuple[int, int, int]] = []
    for key in present + absent:
        t0 = time.perf_counter()
        proof = smt.prove(kv, key)
        t1 = time.perf_counter()
        ok = smt.verify_proof(root, key, value if key in present else None, proof)
        t2 = time.perf_counter()
        assert ok
        prove_us.append((t1 - t0) * 1e6)
        verify_us.append((t2 - t1) * 1e6)
        depth.append(len(proof.siblings))
        json_bytes.append(len(codec.encode(proof)))
        binary.append(_binary_sizes(proof))
    return {"build_s": build_s, "depth_mean": statistics.mean(depth), "depth_max": max(depth),
            "json_bytes": statistics.median(json_bytes),
            "siblings_bytes": statistics.median(b[0] for b in binary),
            "full_bytes": statistics.median(b[1] for b in binary),
            "bitmap_bytes": statistics.median(b[2] for b in binary),
            "prove_us": statistics.median(prove_us), "verify_us": statistics.median(verify_us)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--samples", type=int, default=1000, help="present keys (and as many absent)")
    args = p.parse_args()
    print("keys     depth(mean/max)  JSON B  15-siblings B  full-node B  bitmap B  "
          "prove us  verify us  (medians; in-memory store)")
    for n in args.keys:
        m = measure(n, min(args.samples, n))
        print(f"{n:>7,}  {m['depth_mean']:>5.2f} / {m['depth_max']:<4}     "
              f"{m['json_bytes']:>6,.0f}  {m['siblings_bytes']:>13,.0f}  "
              f"{m['full_bytes']:>11,.0f}  {m['bitmap_bytes']:>8,.0f}  {m['prove_us']:>8.1f}  "
              f"{m['verify_us']:>9.1f}")


if __name__ == "__main__":
    main()
