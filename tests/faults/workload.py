"""A concurrent workload on a devnet that records a Jepsen-style history (issue 22).

Customs registers `keys` declarations of a keyless exporter (one per run); every bank
registers the exporter (KYC) and records a mandate for it, so each bank applies for financing
in its name and opens the financing itself (docs/domain.md §4.1, §4.3). Then each process (a thread)
talks to ITS node only and, with seeded choices, either finances a declaration (a bank,
rotating, applies and then opens a financing pledging a random amount of it) or reads the
declaration's pledged amount (`declaration.get`). The amounts over-finance the declarations on
purpose: the ledger refuses some openings (DOUBLE_FINANCING), which is what the checker
replays. Now and then the regulator releases the pledge of a financing the process opened
(docs/domain.md §4.7, I-17), so the declarations keep taking new financings in a long run.

Every submission is `tx.submit` with wait=True under a deadline; every answer is recorded,
errors classified as "rejected" (refused before ordering: never in the ledger) or "unknown".
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from node.client.transport import RpcClient, RpcError
from node.rpc import errors as rpc_errors
from node.rpc import jsonrpc
from protocol import crypto, txtypes, types
from protocol.ledger import dates
from tests import sealing
from tests.faults.history import History, Op

DECLARED_VALUE: Final = 1_000_000  # minor units (USD cents) of every declaration
# A financing pledges between these amounts: three to six fill a declaration's cap (90% of its
# value at the default advance rate), so later ones are refused as double financing.
PLEDGE_MIN: Final = 150_000
PLEDGE_MAX: Final = 450_000
PLEDGE_STEP: Final = 10_000
READ_SHARE_PERCENT: Final = 40     # of a process's ops
RELEASE_SHARE_PERCENT: Final = 15  # of its ops, when it has a financing to release
SUBMIT_WAIT_MS: Final = 5_000      # tx.submit's wait for the commit
# RpcClient.submit's HTTP deadline is the wait plus 5 s; it resends once after a timeout
SUBMIT_CALL_S: Final = SUBMIT_WAIT_MS / 1000 + 5
CLIENT_TIMEOUT_S: Final = 10.0     # the HTTP deadline of reads (and of connecting)
OPS_PER_PROCESS_MAX: Final = 10_000
# for every process to finish its current call (sent at most twice) once stopped
STOP_DEADLINE_S: Final = 2 * max(SUBMIT_CALL_S, CLIENT_TIMEOUT_S) + 5
ERROR_PAUSE_S: Final = 0.05        # after a failed call, before the next op
MATURITY_MS: Final = 30 * 24 * 60 * 60 * 1000
SETUP_TIMEOUT_S: Final = 60.0

# RPC errors that mean "not admitted, and never will be" (the node refused it before it
# entered its intake log); every other error, a timeout or a lost connection is "unknown".
REJECTED_RPC_CODES: Final = frozenset({
    rpc_errors.TX_REFUSED, rpc_errors.MEMPOOL_FULL_CODE, rpc_errors.UPGRADE_REQUIRED_CODE,
    rpc_errors.UNAUTHORIZED, rpc_errors.FORBIDDEN, jsonrpc.INVALID_PARAMS,
    jsonrpc.INVALID_REQUEST, jsonrpc.METHOD_NOT_FOUND})


# a set-up transaction: (op kind, declaration number or "", declared value, the transaction)
SetupItem = tuple[str, str, int | None, types.Tx]


class Net(Protocol):
    """What the workload needs of a network (tests/e2e/harness.Devnet has it)."""

    keys: dict[str, crypto.PrivateKey]
    config: types.ConsortiumConfig

    def client(self, name: str, timeout_s: float = 10) -> RpcClient: ...

    def names(self) -> list[str]: ...


class WorkloadError(Exception):
    pass


def classify(exc: BaseException) -> tuple[str, str]:
    """(outcome, code) of a failed submission."""
    if isinstance(exc, RpcError):
        data = exc.data if isinstance(exc.data, dict) else {}
        reason = f"{exc.code}:{data.get('code', '')}" if data.get("code") else str(exc.code)
        return ("rejected" if exc.code in REJECTED_RPC_CODES else "unknown"), reason
    return "unknown", f"{type(exc).__name__}: {exc}"[:200]


def submit(client: RpcClient, history: History, op: Op, tx: types.Tx,
           clock: Callable[[], float] = time.monotonic) -> None:
    """Submit `tx` for `op` (already in `history`) and record the answer.

    RpcClient resends a request once after a lost connection or a timeout (closing the
    connection first): a refusal answering the resent request may follow an admission of the
    first, so it is "unknown", not "rejected". The closes during the call tell."""
    closes = 0
    close = client.close

    def counted_close() -> None:
        nonlocal closes
        closes += 1
        close()

    setattr(client, "close", counted_close)  # noqa: B010 - this instance only, for this call
    try:
        reply: dict[str, Any] = client.submit(tx, wait=True, timeout_ms=SUBMIT_WAIT_MS)
    except (OSError, RpcError) as exc:
        outcome, code = classify(exc)
        if outcome == "rejected" and closes:
            outcome, code = "unknown", f"{code} (answering a resent request)"
        history.complete(op, clock(), outcome, code)
        close()
        return
    finally:
        delattr(client, "close")
    if reply.get("status") != "committed":
        history.complete(op, clock(), "unknown", str(reply.get("status", "no status")))
        return
    code = str(reply["receipt"]["code"])
    history.complete(op, clock(), "ok" if code == "OK" else "refused-committed", code,
                     height=int(reply["height"]), index=int(reply["index"]))


class Workload:
    """`processes`: (process id, node name); each process is a thread with its own client to
    its node. `start()` sets up (declarations, the exporter at every bank, mandates) and starts
    the processes; `stop()` stops and joins them under a deadline."""

    def __init__(self, net: Net, processes: list[tuple[int, str]], keys: int, seed: int,
                 tag: str | None = None, ops_per_process: int = OPS_PER_PROCESS_MAX) -> None:
        if len({p for p, _ in processes}) != len(processes):
            raise ValueError("process ids must differ")
        self.net = net
        self.processes = processes
        self.seed = seed
        self.ops_per_process = min(ops_per_process, OPS_PER_PROCESS_MAX)
        # record ids unique per run (a net may carry several runs); choices stay seeded
        self.tag = tag or os.urandom(3).hex()
        self.keys = [f"FL-{self.tag}-{k}" for k in range(keys)]
        # a keyless exporter of this run's own (USCC: 18 of 0-9 and most capitals)
        self.exporter = "91370200" + hashlib.sha256(self.tag.encode()).hexdigest()[:10].upper()
        self.history = History()
        self.banks = [i.id for i in net.config.institutions if i.role == "bank"]
        self.customs = next(i.id for i in net.config.institutions if i.role == "customs")
        self.regulator = next(i.id for i in net.config.institutions if i.role == "regulator")
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    # ------------------------------------------------------------------ transactions

    def _tx(self, signer: str, payload: txtypes.Payload, nonce: bytes) -> types.Tx:
        expires = int(time.time() * 1000) + self.net.config.params.tx_expiry_window_ms // 2
        return types.Tx.create(self.net.keys[signer], chain_id=self.net.config.chain_id,
                               signer=signer, payload=payload, nonce=nonce,
                               expires_at_ms=expires)

    def _nonce(self, what: str) -> bytes:
        return hashlib.sha256(f"workload/{self.tag}/{what}".encode()).digest()[:16]

    # ------------------------------------------------------------------ set-up

    def setup(self) -> None:
        """Declarations and the exporter at every bank, then every bank's mandate; raises
        WorkloadError unless every set-up transaction commits OK."""
        node = self.processes[0][1]
        export_date = dates.format_day(dates.day_of(int(time.time() * 1000)) - 1)
        first: list[SetupItem] = [
            ("register", key, DECLARED_VALUE, self._tx(self.customs, sealing.declaration(
                self.net.config, key, self.exporter, DECLARED_VALUE, export_date),
                self._nonce(f"decl/{key}")))
            for key in self.keys]
        first += [("setup", "", None, self._tx(bank, txtypes.RegisterEnterprise(
            self.exporter, "Fault Lab Exporter Co.", "CN", b""), self._nonce(f"ent/{bank}")))
            for bank in self.banks]
        mandate_expiry = int(time.time() * 1000) + 7 * 24 * 60 * 60 * 1000
        second: list[SetupItem] = [("setup", "", None, self._tx(bank, txtypes.RecordMandate(
            self.exporter, f"M-{self.tag}-{i}", hashlib.sha256(bank.encode()).digest(),
            mandate_expiry), self._nonce(f"mandate/{bank}")))
            for i, bank in enumerate(self.banks)]
        for batch in (first, second):
            self._setup_batch(node, batch)

    def _setup_batch(self, node: str, batch: list[SetupItem]) -> None:
        def one(item: SetupItem) -> Op:
            kind, key, value, tx = item
            client = self.net.client(node, CLIENT_TIMEOUT_S)
            try:
                op = self.history.append(Op(-1, node, kind, key, tx.id.hex(), value,
                                            time.monotonic()))
                submit(client, self.history, op, tx)
                return op
            finally:
                client.close()

        with concurrent.futures.ThreadPoolExecutor(len(batch)) as pool:
            ops = list(pool.map(one, batch, timeout=SETUP_TIMEOUT_S))
        failed = [f"{op.kind} {op.key}: {op.outcome} {op.code}" for op in ops
                  if op.outcome != "ok"]
        if failed:
            raise WorkloadError(f"set-up failed: {failed}")

    # ------------------------------------------------------------------ processes

    def start(self) -> None:
        self.setup()
        self.start_processes()

    def start_processes(self) -> None:
        """The processes alone (after `setup`, e.g. with faults in between)."""
        for pid, node in self.processes:
            t = threading.Thread(target=self._run, args=(pid, node), daemon=True,
                                 name=f"workload-{pid}")
            self._threads.append(t)
            t.start()

    def _run(self, pid: int, node: str) -> None:
        rng = random.Random(self.seed * 1_000_003 + pid)
        client = self.net.client(node, CLIENT_TIMEOUT_S)
        opened: list[tuple[str, str, int]] = []  # (financing id, key, amount) acknowledged OK
        try:
            for n in range(self.ops_per_process):
                if self._stop.is_set():
                    break
                key = rng.choice(self.keys)
                draw = rng.randrange(100)
                if draw < READ_SHARE_PERCENT:
                    self._read(client, pid, node, key)
                elif draw < READ_SHARE_PERCENT + RELEASE_SHARE_PERCENT and opened:
                    fin_id, fin_key, amount = opened.pop(rng.randrange(len(opened)))
                    self._release(client, pid, node, fin_id, fin_key, amount, f"{pid}-{n}")
                else:
                    bank = self.banks[(pid + n) % len(self.banks)]
                    amount = rng.randrange(PLEDGE_MIN, PLEDGE_MAX + 1, PLEDGE_STEP)
                    new = self._finance(client, pid, node, bank, key, amount, f"{pid}-{n}")
                    if new:
                        opened.append((new, key, amount))
        except BaseException as exc:  # a bug of the workload: report it at stop()
            self._errors.append(exc)
        finally:
            client.close()

    def _read(self, client: RpcClient, pid: int, node: str, key: str) -> None:
        op = self.history.append(Op(pid, node, "read", key, None, None, time.monotonic()))
        try:
            reply = client.call("declaration.get", {"declaration_no": key})
        except (OSError, RpcError) as exc:
            client.close()
            self.history.complete(op, time.monotonic(), "unknown", classify(exc)[1])
            self._stop.wait(ERROR_PAUSE_S)
            return
        self.history.complete(op, time.monotonic(), "ok", read=int(reply["pledged"]))

    def _finance(self, client: RpcClient, pid: int, node: str, bank: str, key: str,
                 amount: int, ref: str) -> str | None:
        """The bank applies under its mandate, then opens the financing (only if the
        application committed OK); the financing's id if it was acknowledged OK."""
        app_id, fin_id = f"A-{self.tag}-{ref}", f"F-{self.tag}-{ref}"
        pledges = (txtypes.Pledge(key, amount),)
        now_ms = int(time.time() * 1000)
        apply = self._tx(bank, txtypes.ApplyForFinancing(
            app_id, self.exporter, bank, amount, "USD", pledges, now_ms + 24 * 60 * 60 * 1000),
            self._nonce(f"apply/{ref}"))
        op = self.history.append(Op(pid, node, "apply", key, apply.id.hex(), amount,
                                    time.monotonic()))
        submit(client, self.history, op, apply)
        if op.outcome != "ok" or self._stop.is_set():
            self._stop.wait(ERROR_PAUSE_S)
            return None
        tx = self._tx(bank, txtypes.OpenFinancing(
            fin_id, self.exporter, app_id, amount, "USD", pledges, now_ms + MATURITY_MS),
            self._nonce(f"open/{ref}"))
        op = self.history.append(Op(pid, node, "finance", key, tx.id.hex(), amount,
                                    time.monotonic()))
        submit(client, self.history, op, tx)
        if op.outcome in ("unknown", "rejected"):
            self._stop.wait(ERROR_PAUSE_S)
        return fin_id if op.outcome == "ok" and op.code == "OK" else None

    def _release(self, client: RpcClient, pid: int, node: str, fin_id: str, key: str,
                 amount: int, ref: str) -> None:
        """The regulator releases the pledge of financing `fin_id` (of `amount` on `key`)."""
        tx = self._tx(self.regulator, txtypes.ReleaseFinancing(fin_id, "fault lab release"),
                      self._nonce(f"release/{ref}"))
        op = self.history.append(Op(pid, node, "release", key, tx.id.hex(), amount,
                                    time.monotonic()))
        submit(client, self.history, op, tx)
        if op.outcome in ("unknown", "rejected"):
            self._stop.wait(ERROR_PAUSE_S)

    def done(self) -> bool:
        """Every process finished (its op bound reached, or stopped)."""
        return all(not t.is_alive() for t in self._threads)

    def stop(self) -> None:
        """Stop every process and join it under STOP_DEADLINE_S; raise WorkloadError if one
        did not finish or failed."""
        self._stop.set()
        deadline = time.monotonic() + STOP_DEADLINE_S
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise WorkloadError(f"processes {alive} still running {STOP_DEADLINE_S} s after "
                                "stop")
        if self._errors:
            raise WorkloadError(f"a process failed: {self._errors[0]!r}") from self._errors[0]

    def __enter__(self) -> Workload:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
