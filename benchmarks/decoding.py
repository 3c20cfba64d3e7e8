"""Decoding transactions and blocks of the trade mix (issue 19): protocol/codec.py against a
msgspec prototype, and where the codec's time goes.

Rows, each the median of several runs, in µs of CPU per transaction and per block:

- codec: protocol.codec.decode (orjson parse, typed strict conversion, byte-for-byte canonical
  check), as Tx.decode and Block.decode use it;
- codec at REV (with --against REV, e.g. HEAD~1): the same, with protocol/codec.py as it was at
  that git revision, loaded beside today's and timed in alternation with it (fair figures on a
  shared machine);
- orjson.loads alone and orjson.loads + sorted re-encode: the floor of any orjson-based decoder;
- msgspec prototype (when msgspec is installed; the prototype lives in this file only):
  msgspec.Struct classes generated from our dataclasses with the same bounds (lengths and value
  ranges as msgspec.Meta, bytes as lowercase-hex strings by pattern, strings without control
  characters by pattern, no unknown fields), the payload decoded by its `type` in a second
  pass (msgspec's tagged unions need the tag inside the object, ours is a sibling field), and
  the canonical check as msgspec.json.encode(order="sorted") compared to the input:
  - "msgspec to Structs": the typed decode and canonical check, leaving msgspec Structs (hex
    strings, no __post_init__ format checks): the most msgspec can give;
  - "msgspec + to our dataclasses": then converted into our frozen dataclasses (bytes from
    hex, __post_init__ checks run), which the rest of the node needs;
  - "msgspec to Structs, no patterns": without the hex and control-character patterns (which
    msgspec checks with Python's re, field by field): not strict, it shows what they cost.

A block of 1000 trade-mix transactions is about 925 KB, above BLOCK_BYTES_MAX (900 KiB): it is
decoded here with a larger size limit.

    .venv/bin/pip install msgspec        # optional, not in the lock: the msgspec rows
    .venv/bin/python benchmarks/decoding.py [--against HEAD~1] [--profile]   # about 30 s
    .venv/bin/python benchmarks/decoding.py --quick                          # a smoke run
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import importlib.util
import io
import os
import pathlib
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import types as pytypes
import typing
from collections.abc import Callable
from typing import Annotated, Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import orjson
import trade_mix  # benchmarks/trade_mix.py

from protocol import codec, limits, types
from protocol.txtypes import payload_class

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZE_MAX = 4 * 1024 * 1024  # the 1000-tx block exceeds BLOCK_BYTES_MAX


def codec_at(rev: str) -> Any:
    """protocol/codec.py as it was at git revision `rev`, as a module of its own."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:protocol/codec.py"],
                            capture_output=True, text=True, check=True).stdout
    with tempfile.TemporaryDirectory(prefix="crossbill-codec-") as folder:
        path = pathlib.Path(folder) / f"codec_at_{rev.replace('/', '_')}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------- the msgspec prototype


class MsgspecPrototype:
    """Strict msgspec decoding into Structs generated from our dataclasses (see the module
    docstring); `decode(cls, data)` returns a Struct, `decode_to_dataclass` our dataclass."""

    HEX = r"^(?:[0-9a-f]{2})*$"
    NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"

    def __init__(self, patterns: bool = True) -> None:
        import msgspec

        if not patterns:  # bounds only: hex and control characters left unchecked
            self.HEX = self.NO_CONTROL = None  # type: ignore[assignment]

        self.msgspec = msgspec
        self.structs: dict[tuple[type, bool], Any] = {}
        self.variants: dict[type, tuple[tuple[str, str], ...]] = {}
        self.decoders: dict[Any, Any] = {}
        self.converters: dict[type, Callable[[Any], Any]] = {}

    # schema
    def _field_type(self, tp: Any, meta: dict[str, Any]) -> Any:
        ms = self.msgspec
        tp, meta = codec._unwrap(tp, meta)
        origin = typing.get_origin(tp)
        max_len, min_len = meta.get("max_len"), meta.get("min_len") or 0
        if origin in (pytypes.UnionType, typing.Union):
            (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
            return self._field_type(inner, meta) | None
        if origin is tuple:
            item = self._field_type(typing.get_args(tp)[0], {})
            high = limits.LIST_ITEMS_MAX if max_len is None else max_len
            return Annotated[tuple[item, ...], ms.Meta(min_length=min_len, max_length=high)]
        if tp is bool:
            return bool
        if tp is int:
            lo = limits.INT_MIN if meta.get("min_value") is None else meta["min_value"]
            hi = limits.INT_MAX if meta.get("max_value") is None else meta["max_value"]
            return Annotated[int, ms.Meta(ge=lo, le=hi)]
        if tp is str:
            high = limits.STRING_CHARS_MAX if max_len is None else max_len
            return Annotated[str, ms.Meta(min_length=min_len, max_length=high,
                                          pattern=self.NO_CONTROL)]
        if tp is bytes:
            high = limits.BYTES_LEN_MAX if max_len is None else max_len
            return Annotated[str, ms.Meta(min_length=2 * min_len, max_length=2 * high,
                                          pattern=self.HEX)]
        if dataclasses.is_dataclass(tp):
            return self.struct(tp)
        raise TypeError(tp)

    def struct(self, cls: type, top: bool = False) -> Any:
        key = (cls, top)
        if key not in self.structs:
            hints = typing.get_type_hints(cls, include_extras=True)
            fields: list[Any] = []
            variants = []
            for f in dataclasses.fields(cls):
                _, meta = codec._unwrap(hints[f.name], {})
                if "variant" in meta:
                    variants.append((f.name, meta["variant"][0]))
                    fields.append((f.name, self.msgspec.Raw))
                elif meta.get("absent_when_none"):
                    fields.append((f.name, self._field_type(hints[f.name], {}), None))
                else:
                    fields.append((f.name, self._field_type(hints[f.name], {})))
            if top:
                v = limits.CODEC_VERSION
                fields.append(("v", Annotated[int, self.msgspec.Meta(ge=v, le=v)]))
            # Fields with defaults go last in a Struct; decoding is by name, so order is moot.
            fields.sort(key=lambda f: len(f) == 3)
            self.structs[key] = self.msgspec.defstruct(
                f"{cls.__name__}Struct", fields, forbid_unknown_fields=True, omit_defaults=True)
            self.variants[cls] = tuple(variants)
        return self.structs[key]

    # decoding
    def _decoder(self, tp: Any) -> Any:
        dec = self.decoders.get(tp)
        if dec is None:
            dec = self.decoders[tp] = self.msgspec.json.Decoder(tp)
        return dec

    def _resolve_variants(self, cls: type, obj: Any) -> None:
        """Decode every Raw variant field below `obj` (a Struct of `cls`) in place."""
        for name, disc in self.variants[cls]:
            sub = payload_class(getattr(obj, disc))
            if sub is None:
                raise ValueError(f"unknown {disc}")
            value = self._decoder(self.struct(sub)).decode(getattr(obj, name))
            self._resolve_variants(sub, value)
            setattr(obj, name, value)
        if cls is types.Block:
            for tx in obj.txs:
                self._resolve_variants(types.Tx, tx)

    def decode(self, cls: type, data: bytes) -> Any:
        obj = self._decoder(self.struct(cls, top=True)).decode(data)
        self._resolve_variants(cls, obj)
        if self.msgspec.json.encode(obj, order="sorted") != data:
            raise ValueError("non-canonical encoding")
        return obj

    # conversion to our dataclasses
    def _converter(self, tp: Any) -> Callable[[Any], Any]:
        tp, _ = codec._unwrap(tp, {})
        origin = typing.get_origin(tp)
        if origin in (pytypes.UnionType, typing.Union):
            (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
            conv = self._converter(inner)
            return lambda v: None if v is None else conv(v)
        if origin is tuple:
            conv = self._converter(typing.get_args(tp)[0])
            return lambda v: tuple([conv(x) for x in v])
        if tp is bytes:
            return bytes.fromhex
        if dataclasses.is_dataclass(tp):
            cls = tp
            return lambda v: self.to_dataclass(cls, v)
        return lambda v: v

    def to_dataclass(self, cls: type, obj: Any) -> Any:
        conv = self.converters.get(cls)
        if conv is None:
            hints = typing.get_type_hints(cls, include_extras=True)
            fields = []
            for f in dataclasses.fields(cls):
                _, meta = codec._unwrap(hints[f.name], {})
                if "variant" in meta:
                    fields.append((f.name, None))
                else:
                    fields.append((f.name, self._converter(hints[f.name])))
            plan = tuple(fields)

            def conv(v: Any, cls: Any = cls, plan: Any = plan) -> Any:
                values = {}
                for name, c in plan:
                    x = getattr(v, name)
                    values[name] = c(x) if c is not None else self.to_dataclass(
                        payload_class(v.type), x)
                return cls(**values)

            conv = self.converters[cls] = conv
        return conv(obj)

    def decode_to_dataclass(self, cls: type, data: bytes) -> Any:
        return self.to_dataclass(cls, self.decode(cls, data))


# ------------------------------------------------------------------- measuring


def cpu_us(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.process_time()
        fn()
        samples.append(time.process_time() - started)
    return statistics.median(samples) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--against", metavar="REV",
                        help="also time protocol/codec.py as it was at this git revision")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of the codec decoding the largest block")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, 1 run")
    args = parser.parse_args(argv)
    runs, tx_count, block_sizes = args.runs, 1000, (200, 1000)
    if args.quick:
        runs, tx_count, block_sizes = 1, 40, (20, 40)
    txs = trade_mix.txs(tx_count)
    tx_data = [tx.encoded for tx in txs]
    blocks = {n: trade_mix.block(txs[:n]).encoded for n in block_sizes}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; trade-mix txs of {statistics.mean(map(len, tx_data)):.0f}"
          f" bytes on average, blocks of " + ", ".join(
              f"{n} txs ({len(b) / 1024:.0f} KiB)" for n, b in blocks.items())
          + f"; CPU time, median of {runs} runs; load average {os.getloadavg()[0]:.1f} at the "
          "start", flush=True)

    decoders: list[tuple[str, Callable[[type, bytes], Any]]] = [
        ("codec (this tree)", lambda cls, data: codec.decode(cls, data, max_bytes=SIZE_MAX)),
    ]
    if args.against:
        old = codec_at(args.against)
        decoders.append((f"codec at {args.against}",
                         lambda cls, data: old.decode(cls, data, max_bytes=SIZE_MAX)))
    decoders += [
        ("orjson.loads only (no types, no checks)", lambda cls, data: orjson.loads(data)),
        ("orjson.loads + sorted dumps (canonical check)",
         lambda cls, data: orjson.dumps(orjson.loads(data), option=orjson.OPT_SORT_KEYS)),
    ]
    try:
        proto = MsgspecPrototype()
    except ImportError:
        print("  (msgspec not installed: its rows are left out)")
    else:
        import msgspec

        decoders += [
            (f"msgspec {msgspec.__version__} to Structs (strict + canonical)", proto.decode),
            ("msgspec + to our dataclasses", proto.decode_to_dataclass),
            ("msgspec to Structs, no patterns (NOT strict)", MsgspecPrototype(False).decode),
        ]
        # The prototype must agree with the codec on what it decodes.
        assert proto.decode_to_dataclass(types.Tx, tx_data[0]) == types.Tx.decode(tx_data[0])
        n = block_sizes[0]
        assert proto.decode_to_dataclass(types.Block, blocks[n]) == codec.decode(
            types.Block, blocks[n], max_bytes=SIZE_MAX)

    # Every decoder's runs alternate with the others', so a busy moment of a shared machine
    # does not land on one row.
    cases: list[tuple[str, int, Callable[[Callable[[type, bytes], Any]], Callable[[], object]]]]
    cases = [("per tx (Tx)", len(tx_data),
              lambda dec: lambda: [dec(types.Tx, d) for d in tx_data])]
    for n, data in blocks.items():
        cases.append((f"per block of {n} txs", 1,
                      lambda dec, data=data: lambda: dec(types.Block, data)))
    for _, dec in decoders:  # compile schemas and decoders before timing
        dec(types.Tx, tx_data[0])
        dec(types.Block, blocks[block_sizes[0]])
    for case, count, make in cases:
        samples: dict[str, list[float]] = {name: [] for name, _ in decoders}
        for _ in range(runs):
            for name, dec in decoders:
                samples[name].append(cpu_us(make(dec), 1) / count)
        base = statistics.median(samples[decoders[0][0]])
        print(f"{case}:")
        for name, _ in decoders:
            us = statistics.median(samples[name])
            per_tx = "" if count > 1 else f"  ({us / int(case.split()[3]):7.2f} us per tx)"
            print(f"  {name:<52} {us:11.1f} us CPU{per_tx}  x{base / us:5.2f} the codec's rate",
                  flush=True)

    if args.profile:
        n = max(block_sizes)
        codecs = [("this tree", codec)] + ([(args.against, old)] if args.against else [])
        for label, module in codecs:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(3):
                module.decode(types.Block, blocks[n], max_bytes=SIZE_MAX)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
            print(f"cProfile of the codec ({label}) decoding a {n}-tx block, 3 times (by own "
                  "time; the profiler inflates Python calls more than C ones):")
            print("\n".join(line for line in out.getvalue().splitlines()[4:] if line.strip()))

if __name__ == "__main__":
    main()
