"""A Jepsen-style history: every submission and read of a concurrent workload, with its times
and outcome, recorded by many threads and saved as JSON lines (issue 22).

Outcomes of a submission:

- "ok": committed with receipt code OK;
- "refused-committed": committed with a non-OK receipt code (e.g. DOUBLE_FINANCING): the
  transaction IS in the ledger, and changed nothing;
- "rejected": the API refused it before ordering (an intake refusal): it must NOT be in the
  ledger, ever;
- "unknown": timeout, connection error, still pending when the wait ended: it may or may not
  be committed.

A read is "ok" with the value read, or "unknown" (it failed; the checker ignores it).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

KINDS: Final = ("setup", "register", "apply", "finance", "release", "read")
# the writes that change a declaration's pledged amount: + the op's value, - the op's value
WRITES: Final = {"finance": 1, "release": -1}
OUTCOMES: Final = ("ok", "refused-committed", "rejected", "unknown")
COMMITTED: Final = ("ok", "refused-committed")


@dataclass
class Op:
    process: int          # the workload's process id (-1: the set-up before the processes)
    node: str             # the node the process talks to
    kind: str             # one of KINDS
    key: str              # the declaration number ("" for set-up ops about no declaration)
    tx_id: str | None     # hex; None for reads
    value: int | None     # the request's amount (declared value, pledge amount, the pledge
    #                       a release frees); None: reads and set-up
    invoke_s: float       # time.monotonic() when the request was sent
    complete_s: float | None = None  # when its answer (or failure) came; None: never
    outcome: str = "unknown"
    code: str = ""        # the receipt code, or the error (RPC code and reason, exception)
    height: int | None = None  # the block the receipt named
    index: int | None = None   # the transaction's index in that block
    read: int | None = None    # for reads: the value read (the declaration's pledged amount)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown op kind {self.kind!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Op:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class History:
    """Ops in the order they were invoked; thread-safe. `invoke` records the request and
    returns its op; `complete` sets its answer."""

    def __init__(self, ops: Iterable[Op] = ()) -> None:
        self._lock = threading.Lock()
        self._ops: list[Op] = list(ops)

    def append(self, op: Op) -> Op:
        with self._lock:
            self._ops.append(op)
        return op

    def complete(self, op: Op, complete_s: float, outcome: str, code: str = "", *,
                 height: int | None = None, index: int | None = None,
                 read: int | None = None) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        with self._lock:
            op.complete_s = complete_s
            op.outcome = outcome
            op.code = code
            op.height = height
            op.index = index
            op.read = read

    @property
    def ops(self) -> list[Op]:
        """A snapshot (the list; the ops themselves are shared)."""
        with self._lock:
            return list(self._ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops)

    def save(self, path: pathlib.Path) -> None:
        with path.open("w") as f:
            for op in self.ops:
                f.write(json.dumps(op.to_json(), sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: pathlib.Path) -> History:
        with path.open() as f:
            return cls(Op.from_json(json.loads(line)) for line in f if line.strip())
