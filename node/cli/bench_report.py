"""`crossbill bench` over time: the per-second timeline, windowed figures, outcomes, and the
`--report DIR` folder (figures.json, timeline.csv, run.txt, report.png).

The functions here are pure (they take what the measuring process recorded, with times from
time.monotonic, and return figures), except the writers at the end. matplotlib (the `plot`
extra) is imported only when the PNG is drawn; without it the report has everything but the
PNG.
"""

from __future__ import annotations

import collections
import csv
import itertools
import json
import math
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

SAMPLE_INTERVAL_S: Final = 1.0       # one timeline row per second of the window
MINUTE_S: Final = 60.0               # per_minute's window width
TREND_SPAN_LONG_S: Final = 300.0     # runs of at least TREND_LONG_RUN_S: first/last 5 minutes
TREND_LONG_RUN_S: Final = 600.0      # shorter runs compare their first and last fifth
PNG_DPI: Final = 100
PLOT_EXTRA_HINT: Final = ("report.png not written: matplotlib is not installed; install the "
                          "plot extra: .venv/bin/pip install -e '.[plot]' (or "
                          "pip install 'matplotlib>=3.8,<4')")
CODE_OK: Final = "OK"
CODE_UNREAD: Final = "(receipt not read in time)"


@dataclass(frozen=True)
class Sample:
    """Every node's cumulative CPU seconds (utime + stime) and current resident MB (VmRSS), read
    at time `t` (time.monotonic)."""

    t: float
    cpu_s: tuple[float, ...]
    rss_mb: tuple[float, ...]


@dataclass(frozen=True)
class Row:
    """One second of the window: [t_s, t_s + 1) after its start (the last may be shorter)."""

    t_s: float
    committed_tps: float
    p50_ms: float | None
    p99_ms: float | None
    cpu_pct: tuple[float | None, ...]
    rss_mb: tuple[float | None, ...]


def percentile(values: Sequence[float], p: float) -> float:
    """The value below which a fraction `p` of `values` lies (nearest rank); nan if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 1)


def _bounds(duration_s: float, width_s: float) -> list[tuple[float, float]]:
    """[lo, hi) offsets of consecutive windows of `width_s` covering the run (the last one
    shorter when the duration is not a multiple)."""
    count = max(1, math.ceil(duration_s / width_s - 1e-9))
    return [(k * width_s, min((k + 1) * width_s, duration_s)) for k in range(count)]


def _bucket(points: Iterable[tuple[float, float]], start: float, duration_s: float,
            width_s: float, count: int) -> list[list[float]]:
    """The values of `(time, value)` points, per window of `width_s` from `start`; points
    outside [start, start + duration_s) are left out."""
    out: list[list[float]] = [[] for _ in range(count)]
    for t, value in points:
        offset = t - start
        if 0 <= offset < duration_s:
            out[min(count - 1, math.floor(offset / width_s))].append(value)
    return out


def windowed(start: float, duration_s: float, width_s: float,
             commits: Sequence[tuple[float, int]],
             latencies: Sequence[tuple[float, float]]) -> list[dict[str, Any]]:
    """Per window of `width_s`: committed tx/s (transactions in blocks first applied in it) and
    p50/p99 of the submit-to-applied latencies of transactions applied (on the node they were
    submitted to) in it.

    commits: (time a block was first applied, its transaction count);
    latencies: (time applied on the node submitted to, latency in seconds)."""
    bounds = _bounds(duration_s, width_s)
    counts = _bucket(((t, float(n)) for t, n in commits), start, duration_s, width_s,
                     len(bounds))
    lat = _bucket(latencies, start, duration_s, width_s, len(bounds))
    out = []
    for (lo, hi), c, values in zip(bounds, counts, lat, strict=True):
        span = hi - lo
        txs = int(sum(c))
        out.append({"start_s": round(lo, 3), "end_s": round(hi, 3), "txs": txs,
                    "committed_tps": round(txs / span, 1) if span > 0 else 0.0,
                    "p50_ms": _ms(percentile(values, 0.50)),
                    "p99_ms": _ms(percentile(values, 0.99)),
                    "latencies": len(values)})
    return out


def _cpu_at(samples: Sequence[Sample], t: float, node: int) -> float:
    """Cumulative CPU seconds of `node` at time `t`, linear between the samples around it."""
    if t <= samples[0].t:
        return samples[0].cpu_s[node]
    for a, b in itertools.pairwise(samples):
        if a.t <= t <= b.t:
            if b.t == a.t:
                return b.cpu_s[node]
            return a.cpu_s[node] + (b.cpu_s[node] - a.cpu_s[node]) * (t - a.t) / (b.t - a.t)
    return samples[-1].cpu_s[node]


def _rss_at(samples: Sequence[Sample], t: float, node: int) -> float:
    """Resident MB of `node` at the last sample taken at or before `t` (the first if none)."""
    found = samples[0]
    for s in samples:
        if s.t > t:
            break
        found = s
    return found.rss_mb[node]


def timeline(start: float, duration_s: float, commits: Sequence[tuple[float, int]],
             latencies: Sequence[tuple[float, float]],
             samples: Sequence[Sample]) -> list[Row]:
    """One row per second of the window. CPU % of a node in a second: its CPU seconds between
    the samples that open and close the second over the time between them (100 = one core);
    RSS: the sample that closes the second."""
    seconds = windowed(start, duration_s, SAMPLE_INTERVAL_S, commits, latencies)
    rows = []
    for k, w in enumerate(seconds):
        a = samples[k] if k < len(samples) else None
        b = samples[k + 1] if k + 1 < len(samples) else None
        cpu: tuple[float | None, ...]
        rss: tuple[float | None, ...]
        if a is not None and b is not None and b.t > a.t:
            cpu = tuple(round((y - x) / (b.t - a.t) * 100, 1) if y >= x else None
                        for x, y in zip(a.cpu_s, b.cpu_s, strict=True))
            rss = tuple(round(v, 1) for v in b.rss_mb)
        else:
            width = len(samples[0].cpu_s) if samples else 0
            cpu = rss = (None,) * width
        rows.append(Row(w["start_s"], w["committed_tps"], w["p50_ms"], w["p99_ms"], cpu, rss))
    return rows


def trends(names: Sequence[str], duration_s: float, samples: Sequence[Sample]) -> dict[str, Any]:
    """CPU per node in the first and last span of the window (5 minutes when the run lasts at
    least 10, otherwise a fifth of it) and resident memory at the start, at the end, and its
    growth over the last fifth ("levelling off": near 0)."""
    if len(samples) < 2:
        return {}
    start, end = samples[0].t, samples[-1].t
    long_run = duration_s >= TREND_LONG_RUN_S
    span = TREND_SPAN_LONG_S if long_run else duration_s / 5
    tag = "5min" if long_run else "fifth"
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    change: dict[str, float | None] = {}
    rss_start: dict[str, float] = {}
    rss_end: dict[str, float] = {}
    growth: dict[str, float] = {}
    for i, name in enumerate(names):
        f = _cpu_at(samples, start + span, i) - _cpu_at(samples, start, i)
        la = _cpu_at(samples, end, i) - _cpu_at(samples, end - span, i)
        first[name], last[name] = round(f, 2), round(la, 2)
        change[name] = round((la / f - 1) * 100, 1) + 0.0 if f > 0 else None  # no -0.0
        rss_start[name] = round(samples[0].rss_mb[i], 1)
        rss_end[name] = round(samples[-1].rss_mb[i], 1)
        growth[name] = round(samples[-1].rss_mb[i]
                             - _rss_at(samples, end - duration_s / 5, i), 1)
    return {"cpu_trend_span_s": round(span, 3),
            f"cpu_first_{tag}_s": first, f"cpu_last_{tag}_s": last,
            "cpu_last_vs_first_pct": change,
            "rss_mb_start": rss_start, "rss_mb_end": rss_end,
            "rss_mb_growth_last_fifth": growth,
            "rss_mb_growth_last_fifth_max": max(growth.values(), default=0.0)}


def count_codes(blocks: Mapping[int, Sequence[str]], wanted: set[str],
                codes: Mapping[str, str]) -> dict[str, int]:
    """How many of the `wanted` transactions found in `blocks` (height -> tx ids) got each
    receipt code (CODE_UNREAD: its receipt was not read), most frequent first."""
    counts: collections.Counter[str] = collections.Counter()
    for ids in blocks.values():
        for t in ids:
            if t in wanted:
                counts[codes.get(t, CODE_UNREAD)] += 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def outcomes(codes: Mapping[str, str], submitted: Iterable[str], committed: Iterable[str],
             in_window: Iterable[str], duration_s: float) -> dict[str, Any]:
    """What became of the transactions the nodes acknowledged.

    codes: receipt code per transaction id (as read); submitted: the acknowledged ids;
    committed: the ids seen in a block by the end of the drain; in_window: the ids in blocks
    first applied during the window (what committed_tps counts), split here by receipt: OK,
    refused (any other code), or not read."""
    done = set(committed)
    lost = sum(1 for tx in submitted if tx not in done)
    ok = refused = unread = 0
    for tx in in_window:
        code = codes.get(tx)
        if code is None:
            unread += 1
        elif code == CODE_OK:
            ok += 1
        else:
            refused += 1
    return {"committed_ok": ok, "committed_refused": refused,
            "committed_receipt_unread": unread,
            "committed_ok_tps": round(ok / duration_s, 1) if duration_s > 0 else 0.0,
            "committed_refused_tps": round(refused / duration_s, 1) if duration_s > 0 else 0.0,
            "lost": lost}


# ------------------------------------------------------------------------------ printing


def _f(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def lines_over_time(figures: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """The printed lines of the windowed figures."""
    out = [f"per minute: {'window s':>11} {'tx/s':>8} {'p50 ms':>8} {'p99 ms':>8}  (latency "
           f"of the txs applied in it)"]
    out += [f"{'':<11} {w['start_s']:>5g}-{w['end_s']:<5g} {w['committed_tps']:>8.1f} "
            f"{_f(w['p50_ms']):>8} {_f(w['p99_ms']):>8}" for w in figures.get("per_minute", ())]
    if "cpu_trend_span_s" not in figures:
        return out
    tag = "5min" if "cpu_first_5min_s" in figures else "fifth"
    span = figures["cpu_trend_span_s"]
    out.append(f"over time, per node: CPU seconds in the first and the last {span:g} s of the "
               f"window; resident MB at its start and end, and the growth over its last fifth")
    out.append(f"{'node':<22} {'cpu s first':>11} {'last':>7} {'change':>7} "
               f"{'rss MB start':>12} {'end':>7} {'+last fifth':>11}")
    for n in names:
        change = figures["cpu_last_vs_first_pct"][n]
        out.append(f"{n:<22} {figures[f'cpu_first_{tag}_s'][n]:>11.2f} "
                   f"{figures[f'cpu_last_{tag}_s'][n]:>7.2f} "
                   f"{_f(change, '+.1f') + ('%' if change is not None else ''):>7} "
                   f"{figures['rss_mb_start'][n]:>12.1f} {figures['rss_mb_end'][n]:>7.1f} "
                   f"{figures['rss_mb_growth_last_fifth'][n]:>+11.1f}")
    return out


# ------------------------------------------------------------------------------ the report


def csv_header(names: Sequence[str]) -> list[str]:
    return (["t_s", "committed_tps", "p50_ms", "p99_ms"] + [f"cpu_pct_{n}" for n in names]
            + [f"rss_mb_{n}" for n in names])


def write_report(directory: pathlib.Path, figures: Mapping[str, Any], rows: Sequence[Row],
                 names: Sequence[str], printed: Sequence[str], command: str,
                 title: str) -> list[str]:
    """Write figures.json, timeline.csv, run.txt and (with matplotlib) report.png into
    `directory` (created if needed); returns what to tell the user."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    with (directory / "timeline.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(csv_header(names))
        for r in rows:
            w.writerow([_cell(r.t_s), _cell(r.committed_tps), _cell(r.p50_ms), _cell(r.p99_ms),
                        *(_cell(v) for v in r.cpu_pct), *(_cell(v) for v in r.rss_mb)])
    (directory / "run.txt").write_text(f"$ {command}\n" + "".join(f"{line}\n"
                                                                   for line in printed))
    written = ["figures.json", "timeline.csv", "run.txt"]
    notes = []
    try:
        plot(directory / "report.png", rows, names, title)
        written.append("report.png")
    except ImportError:
        notes.append(PLOT_EXTRA_HINT)
    return [f"report written to {directory}: {', '.join(written)}"] + notes


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def plot(path: pathlib.Path, rows: Sequence[Row], names: Sequence[str], title: str) -> None:
    """Four stacked panels over the window: committed tx/s; p50 and p99 latency; CPU % per
    node; resident MB per node. Raises ImportError without matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    minutes = bool(rows) and rows[-1].t_s >= TREND_LONG_RUN_S
    scale = 60.0 if minutes else 1.0
    x = [(r.t_s + SAMPLE_INTERVAL_S / 2) / scale for r in rows]   # the middle of each second
    nan = float("nan")

    def series(values: Iterable[float | None]) -> list[float]:
        return [nan if v is None else v for v in values]

    fig = Figure(figsize=(11, 12), dpi=PNG_DPI)
    FigureCanvasAgg(fig)  # the non-interactive Agg canvas; no pyplot, no display
    ax = fig.subplots(4, 1, sharex=True)
    ax[0].plot(x, [r.committed_tps for r in rows], color="tab:blue")
    ax[0].set_ylabel("committed tx/s")
    p50 = series(r.p50_ms for r in rows)
    p99 = series(r.p99_ms for r in rows)
    ax[1].plot(x, p50, label="p50", color="tab:green")
    ax[1].plot(x, p99, label="p99", color="tab:red")
    if any(v > 0 for v in p50 + p99 if not math.isnan(v)):
        ax[1].set_yscale("log")
    else:
        ax[1].text(0.5, 0.5, "no transaction applied", transform=ax[1].transAxes,
                   ha="center", va="center", color="gray")
    ax[1].set_ylabel("latency ms\n(submit to applied)")
    ax[1].legend(loc="upper left", fontsize=8)
    for i, name in enumerate(names):
        ax[2].plot(x, series(r.cpu_pct[i] if i < len(r.cpu_pct) else None for r in rows),
                   label=name, linewidth=1)
        ax[3].plot(x, series(r.rss_mb[i] if i < len(r.rss_mb) else None for r in rows),
                   label=name, linewidth=1)
    total = [sum(v for v in r.cpu_pct if v is not None) if any(
        v is not None for v in r.cpu_pct) else nan for r in rows]
    ax[2].plot(x, total, label="all nodes", color="black", linestyle="--", linewidth=1)
    ax[2].set_ylabel("CPU % per node\n(100 = one core)")
    ax[2].legend(loc="upper left", fontsize=7, ncol=4)
    ax[3].set_ylabel("resident MB\nper node")
    ax[3].set_xlabel("minutes since the window start" if minutes
                     else "seconds since the window start")
    for a in ax:
        a.grid(True, alpha=0.3)
        if a.get_yscale() != "log":
            a.set_ylim(0, max(a.get_ylim()[1], 1.0) * 1.1)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path), format="png")
