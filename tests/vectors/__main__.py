"""`python -m tests.vectors`: write docs/vectors/*.json from the code (tests/vectors/generate.py);
`--check`: write nothing, exit 1 and name the files that differ from what the code builds."""

from __future__ import annotations

import argparse
import sys

from tests.vectors.generate import VECTORS_DIR, build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.vectors", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="compare docs/vectors/ with what the code builds, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, data in build().items():
        path = VECTORS_DIR / name
        current = path.read_bytes() if path.exists() else None
        if current == data:
            continue
        stale.append(name)
        if not args.check:
            path.write_bytes(data)
    if args.check and stale:
        print(f"stale test vectors in {VECTORS_DIR}: {', '.join(stale)} "
              "(regenerate with: python -m tests.vectors)", file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote {VECTORS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
