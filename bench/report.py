"""Writes bench/run's report: markdown tables and a chart from one run's raw files.

    python bench/report.py --raw bench/out/run-<date> --md OUT.md --png OUT.png [--intro docs/benchmarks.md]

Reads meta.tsv, servers.tsv, runs.tsv, idle.tsv, rate.tsv, upload.tsv, ws.tsv, ws_idle.tsv and
probes.tsv (written by bench/run and bench/lib.sh). Ratios are quicklane's rps over a peer's rps *in the same
round*, median over rounds. The hand-written intro of --intro (between the
`<!-- intro -->` and `<!-- /intro -->` lines) is carried over into the new report.
With --splice-ws DOCS, the WebSocket section (§10) and its target rows are also spliced into
DOCS (an existing docs/benchmarks.md), whose other sections are left as they are: for
`bench/run --only ws --write-docs` (§10's per-language part, between `<!-- ws-lang -->` and
`<!-- /ws-lang -->`, is kept). With --splice-ws-lang DOCS, only that per-language part of §10
and its target rows: for `bench/run --only ws-lang --write-docs`.
Standard library only, except matplotlib for the chart (skipped, and said so, without it).
"""
from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict
from typing import Any

GROUP_NAMES = {
    "native": "C / C++",
    "python": "Python",
    "node": "Node",
    "go": "Go",
    "all-native": "C",
    "all-go": "Go",
    "all-node": "Node",
    "all-python": "Python",
    "asgi": "ASGI (FastAPI app)",
    "wsgi": "WSGI (Flask app)",
    "fastpath": "native rules",
    "up-native": "C / C++",
    "up-python": "Python",
    "up-node": "Node",
    "up-go": "Go",
    "ws": "WebSockets",
    "ws-lang": "WebSockets per language",
}
ONE_WORKER_GROUPS = ["native", "python", "node", "go"]
ALL_GROUPS = ["all-native", "all-go", "all-node", "all-python"]
APP_GROUPS = ["asgi", "wsgi"]
FP_GROUPS = ["fastpath"]
FP_PY = ("fp-ql-py", "fp-fastapi")  # the rows of the POST /items sub-scenarios
UP_GROUPS = ["up-native", "up-python", "up-node", "up-go"]
WS_GROUPS = ["ws"]
WS_LANG = {"ws-ql-c": "C", "ws-bun": "Bun (JS)", "ws-node-ws": "Node", "ws-websockets": "Python",
           "ws-socketify": "Python (uWS, C++)"}
# WebSocket scenario (issue 16): (quicklane id, peer id, limit, text); echo targets apply to
# every echo sub-scenario, the fan-out one to ws-fanout. Ratios of msg/s (fan-out: deliveries/s).
WS_ECHO_TARGETS: list[tuple[str, str, float, str]] = [
    ("ws-ql-c", "ws-bun", 1.0, "quicklane C ≥ 1.0× Bun"),
    ("ws-ql-c", "ws-node-ws", 3.0, "quicklane C ≥ 3× ws (npm)"),
]
WS_FANOUT_TARGETS: list[tuple[str, str, float, str]] = [
    ("ws-ql-c", "ws-bun", 1.0, "quicklane C ≥ 1.0× Bun (deliveries/s)"),
]
WS_IDLE_LIMIT = 1024  # bytes per idle WebSocket, quicklane C

# WebSockets per language (issue 17, scenario ws-lang): the same ws.tsv rows, told apart by id.
WSL_GROUPS = ["ws-lang"]
WSL_SCENS = ["ws-echo-1024-c64", "ws-fanout"]  # bench/run's ws_lang_group: WSL_SIZE, WSL_CONNS
WSL_LANG = {"wsl-ql-py": "Python", "wsl-ql-fastapi": "Python", "wsl-uvicorn": "Python", "wsl-websockets": "Python",
            "wsl-ql-node": "Node", "wsl-node-ws": "Node", "wsl-bun": "Bun (JS)",
            "wsl-ql-go": "Go", "wsl-ql-gorilla": "Go", "wsl-gorilla": "Go"}
WSL_SHORT = {"wsl-ql-py": "Python native", "wsl-ql-fastapi": "FastAPI under quicklane", "wsl-uvicorn": "FastAPI on uvicorn",
             "wsl-websockets": "websockets", "wsl-ql-node": "Node native", "wsl-node-ws": "ws (npm)", "wsl-bun": "Bun",
             "wsl-ql-go": "Go native", "wsl-ql-gorilla": "gorilla through quicklane", "wsl-gorilla": "gorilla on net/http"}
# (quicklane id, peer id, limit — None: reported, no target — and text); each applies to both
# sub-scenarios. Ratios of msg/s (fan-out: deliveries/s), paired per round.
WSL_TARGETS: list[tuple[str, str, float | None, str]] = [
    ("wsl-ql-py", "wsl-websockets", 5.0, "Python native ≥ 5× websockets (PyPI)"),
    ("wsl-ql-py", "wsl-uvicorn", 2.0, "Python native ≥ 2× FastAPI's websocket on uvicorn"),
    ("wsl-ql-fastapi", "wsl-uvicorn", 1.5, "FastAPI's websocket under quicklane ≥ 1.5× the same app on uvicorn"),
    ("wsl-ql-node", "wsl-node-ws", 2.0, "Node native ≥ 2× ws (npm)"),
    ("wsl-ql-node", "wsl-bun", None, "Node native over Bun"),
    ("wsl-ql-go", "wsl-gorilla", 1.5, "Go native ≥ 1.5× gorilla/websocket on net/http"),
    ("wsl-ql-gorilla", "wsl-gorilla", 1.0, "gorilla/websocket through quicklane.ListenAndServe ≥ 1.0× on net/http"),
]
WSL_MARK = "(§10, per language)"  # ends every per-language target row (the splices find them by it)
WSL_BEGIN, WSL_END = "<!-- ws-lang -->", "<!-- /ws-lang -->"

# Upload scenario (issue 15): each quicklane row's peer, the target (None:
# informational, no PASS/MISS) and its text.
UPLOAD_TARGETS: list[tuple[str, str, float | None, str]] = [
    ("up-ql-asgi", "up-uvicorn", 1.5, "ASGI app under quicklane ≥ 1.5× the same app on uvicorn"),
    ("up-ql-py", "up-uvicorn", 2.0, "Python native (stream=True, async def) ≥ 2× the ASGI app on uvicorn"),
    ("up-ql-py-sync", "up-uvicorn", None, "Python native, def + file-like req.stream(), over uvicorn"),
    ("up-ql-cpp", "up-raw-c", 0.9, "C++ route_stream counting bytes ≥ 0.9× the raw-socket C reader"),
    ("up-ql-cpp-sha", "up-raw-c", None, "C++ route_stream hashing (SHA-256) over the raw reader counting"),
    ("up-ql-node", "up-nodehttp", 1.5, "Node native (stream: true, for await) ≥ 1.5× node:http"),
    ("up-ql-go", "up-nethttp", 1.0, "Go native (StreamBody, c.BodyReader()) ≥ 1.0× net/http"),
    ("up-go-handler", "up-nethttp", 1.0, "Go net/http handler through quicklane.Handler ≥ 1.0× net/http"),
]

DEFAULT_INTRO = """\
Numbers measured by `bench/run`: quicklane side by side with its peers **in the same run** (same load
tool and settings, loopback, one worker/process each unless the scenario says otherwise), reported as
ratios. Nothing here is asserted by a test: PASS/MISS against the targets is information.
Reproduce with `bench/run` (about 25 minutes; it installs the peers from the registries and builds
quicklane first); `bench/run --smoke` proves the harness in a few minutes and writes to `bench/out/`
only. See `bench/README.md` for what each scenario does and how each peer is configured.

How to read them: on a 2-core machine one core serves and the other runs the load tool, so around
85–100k rps wrk itself is near its ceiling; the *server CPU µs/req* column compares cost per request
regardless. Back-to-back runs of the same server vary by about ±15 % on a VM: trust ratios taken in
one run (each ratio pairs runs of the same round), not absolute rps across runs.
"""


def read_tsv(path: str) -> list[list[str]]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def num(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "", "NA") else None
    except ValueError:
        return None


def fmt(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "NA"
    return f"{v:,.{digits}f}".replace(",", " ") if digits == 0 else f"{v:.{digits}f}"


def fmt_ratio(v: float | None) -> str:
    return "NA" if v is None else f"{v:.2f}×"


class Run:
    def __init__(self, raw: str) -> None:
        self.meta = {r[0]: (r[1] if len(r) > 1 else "") for r in read_tsv(os.path.join(raw, "meta.tsv"))}
        self.servers: dict[str, dict[str, str]] = {}
        for r in read_tsv(os.path.join(raw, "servers.tsv")):
            self.servers[r[0]] = {"group": r[1], "role": r[2], "desc": r[3], "status": r[4] if len(r) > 4 else "ok"}
        # runs[scenario][id][round] = row dict
        self.runs: dict[str, dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
        keys = ["rps", "p50", "p99", "p999", "reqs", "non2xx", "sock", "cpu", "rss", "other", "busy", "stall"]
        for r in read_tsv(os.path.join(raw, "runs.tsv")):
            row = dict(zip(keys, r[3:]))
            self.runs[r[0]][r[1]][int(r[2])] = row
        ikeys = ["before", "with", "per", "opened", "base", "fresh", "fresh_max", "reused", "failed"]
        self.idle = {r[0]: dict(zip(ikeys, r[1:])) for r in read_tsv(os.path.join(raw, "idle.tsv"))}
        # rate[id][round] = row dict (a run before rounds has no round column: round 1)
        rkeys = ["target", "achieved", "p50", "p90", "p99", "p999", "max", "errors", "late", "measured", "other"]
        self.rate: dict[str, dict[int, dict[str, str]]] = defaultdict(dict)
        for r in read_tsv(os.path.join(raw, "rate.tsv")):
            if len(r) == 11:
                r.insert(1, "1")
            self.rate[r[0]][int(r[1])] = dict(zip(rkeys, r[2:]))
        # upload[scenario][id][round] = row dict (scenario upload-<conns>)
        ukeys = ["conns", "passes", "bytes", "wall", "mibs", "cpu", "rss", "peak", "cmin", "cmax", "errors", "other", "note"]
        self.upload: dict[str, dict[str, dict[int, dict[str, str]]]] = defaultdict(lambda: defaultdict(dict))
        for r in read_tsv(os.path.join(raw, "upload.tsv")):
            self.upload[r[0]][r[1]][int(r[2])] = dict(zip(ukeys, r[3:]))
        # ws[scenario][id][round] = row dict (ws-echo-<size>-c<conns>, ws-fanout)
        wkeys = ["conns", "inflight", "size", "msgs", "rate", "mibs", "published", "pubs", "p50", "p90", "p99", "p999",
                 "max", "errors", "cpu", "rss", "peak", "scpu", "ccpu", "other", "note"]
        self.ws: dict[str, dict[str, dict[int, dict[str, str]]]] = defaultdict(lambda: defaultdict(dict))
        for r in read_tsv(os.path.join(raw, "ws.tsv")):
            self.ws[r[0]][r[1]][int(r[2])] = dict(zip(wkeys, r[3:]))
        wikeys = ["before", "with", "per", "opened", "held", "errors"]
        self.ws_idle = {r[0]: dict(zip(wikeys, r[1:])) for r in read_tsv(os.path.join(raw, "ws_idle.tsv"))}
        self.probes = read_tsv(os.path.join(raw, "probes.tsv"))
        self.contended = set(self.meta.get("contended", "").split())
        self.raw = raw

    def ids(self, group: str) -> list[str]:
        return [i for i, s in self.servers.items() if s["group"] == group]

    def median_row(self, scen: str, sid: str) -> dict[str, Any] | None:
        rounds = self.runs.get(scen, {}).get(sid)
        if not rounds:
            return None
        with_rps = sorted((num(r["rps"]), k) for k, r in rounds.items() if num(r["rps"]) is not None)
        if not with_rps:
            return next(iter(rounds.values()))
        return rounds[with_rps[(len(with_rps) - 1) // 2][1]]

    def rps_rounds(self, scen: str, sid: str) -> dict[int, float | None]:
        return {k: num(r["rps"]) for k, r in self.runs.get(scen, {}).get(sid, {}).items()}

    def paired(self, scen: str, a: str, b: str, field: str = "rps", invert: bool = False,
               scen_b: str | None = None) -> tuple[float | None, list[float]]:
        """Median over rounds of a/b (same round); invert=True gives b/a (for costs).
        scen_b: b's scenario when it is another one (a cache hit over /ping of one server)."""
        ra = self.runs.get(scen, {}).get(a, {})
        rb = self.runs.get(scen_b or scen, {}).get(b, {})
        vals = []
        for k in sorted(set(ra) & set(rb)):
            x, y = num(ra[k].get(field)), num(rb[k].get(field))
            if invert:
                x, y = y, x
            if x is not None and y:
                vals.append(x / y)
        return (statistics.median(vals) if vals else None), vals

    def contended_rounds(self, scen: str, *ids: str, scens: tuple[str, ...] = ()) -> list[str]:
        out = []
        for c in self.contended:
            s, i, r = (c.split("/") + ["", "", ""])[:3]
            if (s == scen or s in scens) and i in ids:
                out.append(f"{i} {r}")
        return sorted(set(out))

    @staticmethod
    def _median_round(table: dict, scen: str, sid: str, field: str) -> dict[str, str] | None:
        """The round with the median of field (the table's row), or None."""
        rounds = table.get(scen, {}).get(sid)
        if not rounds:
            return None
        ok = sorted((num(r[field]), k) for k, r in rounds.items() if num(r[field]) is not None)
        if not ok:
            return next(iter(rounds.values()))
        return rounds[ok[(len(ok) - 1) // 2][1]]

    @staticmethod
    def _paired(table: dict, scen: str, a: str, b: str, field: str,
                invert: bool) -> tuple[float | None, list[float]]:
        """Median over rounds of a's field over b's in the same round (invert: b/a, for costs)."""
        ra, rb = table.get(scen, {}).get(a, {}), table.get(scen, {}).get(b, {})
        vals = []
        for k in sorted(set(ra) & set(rb)):
            x, y = num(ra[k].get(field)), num(rb[k].get(field))
            if invert:
                x, y = y, x
            if x is not None and y:
                vals.append(x / y)
        return (statistics.median(vals) if vals else None), vals

    def upload_median(self, scen: str, sid: str) -> dict[str, str] | None:
        return self._median_round(self.upload, scen, sid, "mibs")

    def upload_paired(self, scen: str, a: str, b: str, field: str = "mibs",
                      invert: bool = False) -> tuple[float | None, list[float]]:
        return self._paired(self.upload, scen, a, b, field, invert)

    def ws_median(self, scen: str, sid: str) -> dict[str, str] | None:
        return self._median_round(self.ws, scen, sid, "rate")

    def ws_paired(self, scen: str, a: str, b: str, field: str = "rate",
                  invert: bool = False) -> tuple[float | None, list[float]]:
        return self._paired(self.ws, scen, a, b, field, invert)

    def status_text(self, sid: str) -> str:
        st = self.servers.get(sid, {}).get("status", "not in this run")
        return st


def scenario_table(run: Run, scen: str, groups: list[str], title_note: str = "", only: tuple[str, ...] = ()) -> list[str]:
    out = []
    out.append("| language | server | rps | p50 (µs) | p99 (µs) | RSS after (KiB) | server CPU µs/req | quicklane ÷ this server (rps, same round) | notes |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|---|")
    any_row = False
    for g in groups:
        ids = run.ids(g)
        qls = [i for i in ids if run.servers[i]["role"] == "ql" and run.median_row(scen, i)]
        for sid in ids:
            s = run.servers[sid]
            if s["status"] == "not selected" or (only and sid not in only):
                continue
            any_row = True
            name = f"**{s['desc']}**" if s["role"] == "ql" else s["desc"]
            row = run.median_row(scen, sid)
            if row is None:
                why = s["status"] if s["status"] != "ok" else "not run"
                if scen in ("echo", "apps-echo") and sid.endswith("nginx"):
                    why = "n/a: nginx has no host code to parse JSON (no njs); not measured"
                out.append(f"| {GROUP_NAMES[g]} | {name} | — | — | — | — | — | — | {why} |")
                continue
            ratios = []
            if s["role"] == "peer":
                for q in qls:
                    r, _ = run.paired(scen, q, sid)
                    ratios.append(f"{q} {fmt_ratio(r)}")
            notes = []
            if num(row.get("non2xx")) not in (None, 0.0):
                notes.append(f"non-2xx {row['non2xx']}")
            if row.get("sock") not in ("none", None, ""):
                notes.append(f"socket errors: {row['sock']}")
            cr = run.contended_rounds(scen, sid)
            if cr:
                notes.append("contended: " + ", ".join(cr))
            if s["status"] != "ok":
                notes.append(s["status"])
            rounds = [fmt(v) for _, v in sorted(run.rps_rounds(scen, sid).items())]
            if len(rounds) > 1:
                notes.append("rounds " + " ".join(rounds))
            out.append(
                f"| {GROUP_NAMES[g]} | {name} | {fmt(num(row['rps']))} | {fmt(num(row['p50']))} | {fmt(num(row['p99']))} "
                f"| {fmt(num(row['rss']))} | {row.get('cpu', 'NA')} | {', '.join(ratios) or '—'} | {'; '.join(notes)} |"
            )
    if not any_row:
        return ["Not run (not selected)."]
    return out


def idle_table(run: Run) -> list[str]:
    out = [
        "| language | server | RSS before (KiB) | RSS with the conns (KiB) | bytes / conn | conns held | new GET /ping, none held (µs, median) | new GET /ping while held (µs, median / max) | held conns still served after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    n = 0
    for g in ONE_WORKER_GROUPS:
        for sid in run.ids(g):
            s = run.servers[sid]
            if s["status"] == "not selected":
                continue
            name = f"**{s['desc']}**" if s["role"] == "ql" else s["desc"]
            d = run.idle.get(sid)
            if not d:
                out.append(f"| {GROUP_NAMES[g]} | {name} | — | — | — | — | — | — | {s['status'] if s['status'] != 'ok' else 'not run'} |")
                continue
            n += 1
            out.append(
                f"| {GROUP_NAMES[g]} | {name} | {d['before']} | {d['with']} | {d['per']} | {d['opened']} | {d['base']} "
                f"| {d['fresh']} / {d['fresh_max']} | {d['reused']} |"
            )
    return out if n or len(out) > 2 else ["Not run (not selected)."]


def rate_median(rounds: dict[int, dict[str, str]], field: str) -> float | None:
    vals = [v for v in (num(r.get(field)) for r in rounds.values()) if v is not None]
    return statistics.median(vals) if vals else None


def rate_table(run: Run) -> list[str]:
    out = [
        "| language | server | target rps | achieved rps | p50 (µs) | p99 (µs) | p99.9 (µs) | max (µs) | errors "
        "| quicklane p99 ÷ this server's (same round) | rounds: p50 / p99 / p99.9 (µs) | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    n = 0
    for g in ONE_WORKER_GROUPS:
        qls = [i for i in run.ids(g) if run.servers[i]["role"] == "ql" and run.rate.get(i)]
        for sid in run.ids(g):
            s = run.servers[sid]
            if s["status"] == "not selected":
                continue
            name = f"**{s['desc']}**" if s["role"] == "ql" else s["desc"]
            rounds = run.rate.get(sid)
            if not rounds:
                out.append(f"| {GROUP_NAMES[g]} | {name} | — | — | — | — | — | — | — | — | — | {s['status'] if s['status'] != 'ok' else 'not run'} |")
                continue
            n += 1
            med = {f: rate_median(rounds, f) for f in ("achieved", "p50", "p99", "p999")}
            target = next(iter(rounds.values()))["target"]
            worst = max((v for v in (num(r["max"]) for r in rounds.values()) if v is not None), default=None)
            errors = sum(num(r["errors"]) or 0 for r in rounds.values())
            ratios = []
            if s["role"] == "peer":  # each quicklane front end's p99 over this peer's, same round, median
                for q in qls:
                    vals = [num(run.rate[q][k]["p99"]) / num(rounds[k]["p99"]) for k in sorted(set(run.rate[q]) & set(rounds))
                            if num(run.rate[q][k]["p99"]) is not None and num(rounds[k]["p99"])]
                    ratios.append(f"{q} {fmt_ratio(statistics.median(vals) if vals else None)}"
                                  + (f" ({' '.join(f'{v:.2f}' for v in vals)})" if len(vals) > 1 else ""))
            per_round = ", ".join(f"r{k} {r['p50']} / {r['p99']} / {r['p999']}" for k, r in sorted(rounds.items()))
            notes = []
            t = num(target)
            if t and any((num(r["achieved"]) or 0) < 0.97 * t for r in rounds.values()):
                notes.append("**did not sustain the rate** (a round): its latencies include queueing")
            cr = run.contended_rounds("rate", sid)
            if cr:
                notes.append("contended: " + ", ".join(cr))
            out.append(
                f"| {GROUP_NAMES[g]} | {name} | {target} | {fmt(med['achieved'])} | {fmt(med['p50'])} | {fmt(med['p99'])} "
                f"| {fmt(med['p999'])} | {fmt(worst)} | {fmt(errors)} | {', '.join(ratios) or '—'} | {per_round} | {'; '.join(notes)} |"
            )
    return out if n or len(out) > 2 else ["Not run (not selected)."]


def upload_scens(run: Run) -> list[str]:
    """The upload sub-scenarios of the run (upload-1, upload-16), by connections."""
    return sorted(run.upload, key=lambda s: int(s.split("-")[1]) if s.split("-")[1].isdigit() else 0)


def upload_table(run: Run, scen: str) -> list[str]:
    out = [
        "| language | server | MiB/s | server CPU ms / MiB | RSS before (MiB) | peak RSS (MiB) | a connection's time, min / max (s) "
        "| this ÷ its peer (MiB/s, same round) | by CPU ms / MiB | notes |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    peer_of = {q: (p, lim) for q, p, lim, _ in UPLOAD_TARGETS}
    n = 0
    for g in UP_GROUPS:
        for sid in run.ids(g):
            s = run.servers[sid]
            if s["status"] == "not selected":
                continue
            name = f"**{s['desc']}**" if s["role"] == "ql" else s["desc"]
            row = run.upload_median(scen, sid)
            if row is None:
                why = s["status"] if s["status"] != "ok" else "not run"
                out.append(f"| {GROUP_NAMES[g]} | {name} | — | — | — | — | — | — | — | {why} |")
                continue
            n += 1
            ratio = cpu_ratio = "—"
            if sid in peer_of:
                p, lim = peer_of[sid]
                r, vals = run.upload_paired(scen, sid, p)
                c, _ = run.upload_paired(scen, sid, p, field="cpu", invert=True)
                ratio = f"÷ {p} {fmt_ratio(r)}" + (f" ({' '.join(f'{v:.2f}' for v in vals)})" if len(vals) > 1 else "")
                ratio += "" if lim is None else f", target ≥ {lim}×" + ("" if r is None else f": {'PASS' if r >= lim else 'MISS'}")
                cpu_ratio = fmt_ratio(c)
            notes = []
            rounds = run.upload[scen][sid]
            errs = sum(num(r.get("errors")) or 0 for r in rounds.values())
            if errs or any(num(r.get("errors")) is None for r in rounds.values()):
                notes.append(f"**failed uploads: {fmt(errs)}**")
            for r in rounds.values():
                if r.get("note") and r["note"] not in notes:
                    notes.append(r["note"])
            cr = run.contended_rounds(scen, sid)
            if cr:
                notes.append("contended: " + ", ".join(cr))
            if len(rounds) > 1:
                notes.append("rounds " + " ".join(fmt(num(r["mibs"])) for _, r in sorted(rounds.items())))
            passes = row.get("passes", "?")
            notes.append(f"{passes} pass{'es' if passes != '1' else ''}")
            mib = lambda v: fmt((num(v) or 0) / 1024, 1) if num(v) is not None else "NA"  # noqa: E731
            out.append(
                f"| {GROUP_NAMES[g]} | {name} | {fmt(num(row['mibs']))} | {row.get('cpu', 'NA')} | {mib(row['rss'])} "
                f"| {mib(row['peak'])} | {row.get('cmin', 'NA')} / {row.get('cmax', 'NA')} | {ratio} | {cpu_ratio} | {'; '.join(notes)} |"
            )
    return out if n or len(out) > 2 else ["Not run (not selected)."]


def verdict(run: "Run", scen: str, q: str, p: str, r: float | None, lim: float | None,
            scens: tuple[str, ...] = ()) -> str:
    """A target row's result: PASS/MISS (or info without a target) with its
    contended rounds, or why there is no value."""
    if r is None:
        why = run.status_text(q) if run.status_text(q) != "ok" else run.status_text(p)
        return f"no value ({why if why != 'ok' else 'not run'})"
    res = "(info, no target)" if lim is None else ("PASS" if r >= lim else "MISS")
    cr = run.contended_rounds(scen, q, p, scens=scens)
    if cr:
        res += " (contended rounds: " + ", ".join(cr) + ")"
    return res


def upload_target_rows(run: Run) -> list[str]:
    out = []
    for scen in upload_scens(run):
        conns = scen.split("-", 1)[1]
        for q, p, lim, text in UPLOAD_TARGETS:
            if lim is None:
                continue
            r, vals = run.upload_paired(scen, q, p)
            c, _ = run.upload_paired(scen, q, p, field="cpu", invert=True)
            res = verdict(run, scen, q, p, r, lim)
            out.append(f"| upload ({conns} conn{'s' if conns != '1' else ''}): {text} | {fmt_ratio(r)} "
                       f"| {' '.join(f'{v:.2f}' for v in vals)} | {fmt_ratio(c)} | {res} |")
    return out


# The front end of each language the targets are about (others are informational rows).
PRIMARY = {"ql-c", "ql-cpp", "ql-py", "ql-node", "ql-go"}

TARGETS: list[tuple[str, str, str, str, float, str]] = [
    # (text, scenario, quicklane id, peer id, limit, the peer's scenario when another one)
    ("native /ping (C) ≥ 0.95× nginx", "ping", "ql-c", "nginx", 0.95, ""),
    ("/hello/x by a C handler ≥ 0.85× nginx", "hello", "ql-c", "nginx", 0.85, ""),
    ("Python (async def) /hello/x ≥ 5× FastAPI on uvicorn", "hello", "ql-py", "fastapi", 5.0, ""),
    ("Python (async def) /hello/x ≥ 1.2× Granian RSGI", "hello", "ql-py", "granian", 1.2, ""),
    ("Node /hello/x ≥ 2× Fastify 5", "hello", "ql-node", "fastify", 2.0, ""),
    ("Go /hello/x ≥ 1.0× net/http", "hello", "ql-go", "nethttp", 1.0, ""),
    # Native rules (issue 9).
    ("invalid POST /items, rejected natively (Python example) ≥ 20× FastAPI (pydantic)", "fp-invalid", "fp-ql-py", "fp-fastapi", 20.0, ""),
    ("valid POST /items through a Python handler ≥ 4× FastAPI", "fp-valid", "fp-ql-py", "fp-fastapi", 4.0, ""),
    ("cache hit (C example /cached/a) ≥ 0.9× its native static /ping", "fp-cache", "fp-ql-c", "fp-ql-c", 0.9, "fp-ping"),
    ("static 10 KB file, gzip (C example /static/) ≥ 0.9× nginx gzip_static", "fp-static", "fp-ql-c", "fp-nginx", 0.9, ""),
]


def targets_table(run: Run) -> list[str]:
    out = [
        "| target | measured (rps ratio; uploads: MiB/s ratio; WebSockets: msg/s ratio; median of rounds) | per round "
        "| by CPU µs/req (uploads: ms/MiB; WebSockets: µs/msg) | result |",
        "|---|---:|---|---:|---|",
    ]
    for text, scen, q, p, lim, sp in TARGETS:
        sp = sp or scen
        r, vals = run.paired(scen, q, p, scen_b=sp)
        c, _ = run.paired(scen, q, p, field="cpu", invert=True, scen_b=sp)
        res = verdict(run, scen, q, p, r, lim, scens=(sp,))
        out.append(f"| {text} | {fmt_ratio(r)} | {' '.join(f'{v:.2f}' for v in vals)} | {fmt_ratio(c)} | {res} |")
    out += upload_target_rows(run)
    out += ws_target_rows(run)
    out += ws_lang_target_rows(run)
    want = 5000
    for sid, d in run.idle.items():
        if run.servers.get(sid, {}).get("role") != "ql":
            continue
        info = sid not in PRIMARY  # the def-handler example, the net/http adapter: shown, not targets
        per = num(d.get("per"))
        note = ""
        if d.get("opened") != str(want):
            note = f" ({d.get('opened')} held; the target is for {want})"
        res = "no value" if per is None else ("PASS" if per <= 2048 else "MISS")
        if info:
            res = f"(info) {res}"
        out.append(f"| {'(info) ' if info else ''}≤ 2 KB per idle keep-alive connection: {run.servers[sid]['desc']}{note} "
                   f"| {d.get('per')} B | | | {res} |")
    return out


def chart(run: Run, png: str) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is not installed"
    panels = [
        ("ping", ONE_WORKER_GROUPS, "GET /ping — 1 worker (quicklane: native static route)"),
        ("hello", ONE_WORKER_GROUPS, "GET /hello/x — 1 worker, host-language handler"),
        ("echo", ONE_WORKER_GROUPS, "POST /echo, 1 KB JSON — 1 worker"),
        ("allcores", ALL_GROUPS, "GET /hello/x — all cores (workers = nproc)"),
        ("apps-hello", APP_GROUPS, "existing apps: GET /hello/x — 1 worker"),
        ("apps-echo", APP_GROUPS, "existing apps: POST /echo — 1 worker"),
        ("fp-invalid", FP_GROUPS, "invalid POST /items (422) — 1 worker"),
        ("fp-valid", FP_GROUPS, "valid POST /items (201) — 1 worker"),
        ("fp-static", FP_GROUPS, "GET 10 KB file, gzip — 1 worker"),
        ("fp-large", FP_GROUPS, "GET 8 MiB file (sendfile) — 1 worker"),
    ]
    panels = [p for p in panels if run.runs.get(p[0])]
    for scen in upload_scens(run):
        c = scen.split("-", 1)[1]
        panels.append((scen, UP_GROUPS, f"upload, {c} connection{'s' if c != '1' else ''} at once — 1 worker (MiB/s)"))
    for groups, what in ((WS_GROUPS, "WebSocket"), (WSL_GROUPS, "WebSockets per language:")):
        for scen in ("ws-echo-1024-c64", "ws-fanout"):
            if scen in ws_scens(run, groups):
                panels.append((scen, groups, f"{what} echo, 1 KiB, 64 conns × 8 in flight — 1 worker (thousand msg/s)"
                               if scen != "ws-fanout" else f"{what} fan-out to 1 room — 1 worker (thousand deliveries/s)"))

    def value(scen: str, sid: str) -> float | None:  # thousand rps, or MiB/s for uploads
        if scen.startswith("upload-"):
            row = run.upload_median(scen, sid)
            return num(row["mibs"]) if row else None
        if scen.startswith("ws-"):
            row = run.ws_median(scen, sid)
            v = num(row["rate"]) if row else None
            return None if v is None else v / 1000
        row = run.median_row(scen, sid)
        v = num(row["rps"]) if row else None
        return None if v is None else v / 1000
    if not panels:
        return "no chart: no throughput scenario ran"
    cols = 2 if len(panels) > 1 else 1
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(8 * cols, 4.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (scen, groups, title) in zip(axes.flat, panels):
        x = 0.0
        ticks, labels = [], []
        top = max([value(scen, i) or 0 for g in groups for i in run.ids(g)] + [0.001])
        for g in groups:
            ids = [i for i in run.ids(g) if run.servers[i]["status"] != "not selected" and
                   (value(scen, i) is not None or (run.servers[i]["role"] == "ql" and g not in FP_GROUPS + UP_GROUPS + WS_GROUPS + WSL_GROUPS))]
            if not ids:
                continue
            start = x
            for sid in ids:
                v = value(scen, sid)
                ql = run.servers[sid]["role"] == "ql"
                h = v or 0
                ax.bar(x, h, width=0.8, color="#1f6fb4" if ql else "#b0b0b0", edgecolor="black", linewidth=0.5)
                if scen.startswith("upload-"):
                    label = "n/a" if v is None else f"{h:.0f}"
                else:
                    label = "n/a" if v is None else (f"{h:.0f}k" if h >= 10 else f"{h:.1f}k")
                ax.text(x, h, label, ha="center", va="bottom", fontsize=7)
                if h > 0.25 * top:  # the name inside the bar, else above its value
                    ax.text(x, 0.02 * top, sid, rotation=90, ha="center", va="bottom", fontsize=7,
                            color="white" if ql else "black")
                else:
                    ax.text(x, h + 0.06 * top, sid, rotation=90, ha="center", va="bottom", fontsize=7)
                x += 1
            ticks.append((start + x - 1) / 2)
            labels.append(GROUP_NAMES[g])
            x += 0.8
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels)
        ax.set_ylabel("MiB / s" if scen.startswith("upload-") else "thousand requests / s")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(0, top * 1.3)
    smoke = " (SMOKE RUN: numbers mean little)" if run.meta.get("smoke") == "1" else ""
    fig.suptitle(f"quicklane (blue) vs peers (grey), median rps (uploads: MiB/s) — {run.meta.get('date', '')}, "
                 f"{run.meta.get('nproc', '?')} CPU {run.meta.get('cpu', '')}{smoke}", fontsize=11)
    # tight_layout ignores the super-title: keep about half an inch free for it.
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (4.6 * rows)))
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return ""


def upload_section(run: Run, settings: dict[str, str]) -> list[str]:
    mib = settings.get("UPLOAD_MIB", "256")
    min_s = settings.get("UPLOAD_MIN_S", "?")
    floor = num(run.meta.get("upload_hash_mibs"))
    L = ["## 9. Streamed uploads (issue 15): a body hashed (SHA-256) or counted as it arrives", "",
         f"`bench/upload_client.c` POSTs {mib} MiB with `Content-Length`, generated on the fly (never held in memory),",
         f"over one connection, and split over 16 connections at once (each sends {mib} MiB / 16, so every pass moves",
         f"{mib} MiB whatever the connection count), then reads the answer; "
         + (f"a run repeats such passes (new connections each) until {min_s} s have gone by, so a fast server's CPU "
            "ticks mean something" if num(min_s) else "a run is one pass") +
         f"; {settings.get('UPLOAD_ROUNDS', settings.get('ROUNDS', '?'))} rounds, order reversed every other round. The handler hashes every",
         "chunk with SHA-256 (hashlib in Python) and answers `{\"bytes\": N, \"sha256\": \"…\"}` (checked before the",
         "runs against the bytes sent), except the C/C++ pair: the raw-socket C reader (`bench/peers/c/upload_raw.c`,",
         "one epoll thread, 256 KiB reads, counts and drops the bytes) is the ceiling of reading the socket, and",
         "quicklane's C++ `route_stream` server (`bench/peers/cpp/ql_upload.cpp`) is measured counting the bytes too",
         "(its target row) and, as information, hashing them with OpenSSL's SHA-256. Python: one plain ASGI app",
         "(`bench/peers/python/upload_asgi.py`, `receive()` chunks into hashlib) under quicklane (`--interface asgi`) and",
         "under uvicorn[standard]; quicklane's native `stream=True` route (`bench/peers/python/upload_ql.py`), `async def`",
         "with `async for chunk in req.stream()` and, as information, `def` reading the file-like `req.stream()`.",
         "Node (node:crypto): quicklane's `{ stream: true }` route, `for await (const chunk of req)`",
         "(`bench/peers/node/upload_ql.js`), vs node:http hashing req's `'data'` events (`upload_nodehttp.js`). Go",
         "(crypto/sha256): quicklane's native `StreamBody` route, `io.Copy(h, c.BodyReader())` (`bench/peers/go/upload/ql`),",
         "and one net/http ServeMux, `io.Copy(h, r.Body)` (`bench/peers/go/upload/upload.go`), through",
         "`quicklane.Mount` (`upload/handler`) and on plain `http.Server` (`upload/nethttp`), GOMAXPROCS=1.",
         "One worker each, pinned (server CPU 0, client CPU 1).", "",
         "Columns: *MiB/s* = bytes sent ÷ wall time of the run (first connect to last answer); *server CPU ms / MiB* =",
         "utime + stime of the server's processes (`/proc/<pid>/stat`) over the run ÷ MiB; *RSS before* and *peak RSS*",
         "(VmHWM reset before the run with `clear_refs`; all the server's processes); a connection's connect-to-answer",
         "time within its pass (min / max: fairness among concurrent uploads). Values are from the round with the",
         "median MiB/s; the ratio pairs rounds (median over rounds); *by CPU* = the peer's CPU ms / MiB over this one's.", ""]
    scens = upload_scens(run)
    if floor:
        need = []
        for scen in scens:
            u = run.upload_median(scen, "up-uvicorn")
            if u and num(u["mibs"]):
                need.append(f"{scen.split('-', 1)[1]} conn: uvicorn {fmt(num(u['mibs']))} MiB/s, so 1.5× = "
                            f"{fmt(1.5 * num(u['mibs']))} and 2× = {fmt(2 * num(u['mibs']))} MiB/s")
        L += [f"SHA-256 alone (hashlib, 256 KiB chunks, on the server CPU) runs at {fmt(floor)} MiB/s here: a Python",
              "server that hashes on one core cannot go faster, whatever its transport costs (at that rate the hash",
              f"takes {1000 / floor:.2f} ms of each MiB's CPU; the rest is the server's)."
              + (" The Python targets in MiB/s: " + "; ".join(need) + "." if need else ""), ""]
    if not scens:
        return L + ["Not run (not selected).", ""]
    for scen in scens:
        c = scen.split("-", 1)[1]
        L += [f"### {mib} MiB over {c} connection{'s' if c != '1' else ''}" + (f" ({int(mib) // int(c)} MiB each)" if c != "1" and mib.isdigit() else ""),
              "", *upload_table(run, scen), ""]
    return L


def ws_row_notes(run: "Run", scen: str, sid: str, rounds: dict, status: str = "ok") -> list[str]:
    """The notes column of a WebSocket row: errors, the rounds' own notes, the
    server's status, contended rounds, and each round's rate."""
    notes: list[str] = []
    errs = sum(num(r.get("errors")) or 0 for r in rounds.values())
    if errs or any(num(r.get("errors")) is None for r in rounds.values()):
        notes.append(f"**errors: {fmt(errs)}**" + ("" if all(num(r.get("errors")) is not None for r in rounds.values())
                                                 else " (a round without a result)"))
    for r in rounds.values():
        if r.get("note") and r["note"] not in notes:
            notes.append(r["note"])
    if status != "ok":
        notes.append(status)
    cr = run.contended_rounds(scen, sid)
    if cr:
        notes.append("contended: " + ", ".join(cr))
    if len(rounds) > 1:
        notes.append("rounds " + " ".join(fmt(num(r["rate"])) for _, r in sorted(rounds.items())))
    return notes


def ws_scens(run: Run, groups: list[str] = WS_GROUPS) -> list[str]:
    """The WebSocket sub-scenarios the groups' servers ran: echo by connections then size, fan-out last."""
    ids = {i for g in groups for i in run.ids(g)}

    def key(s: str) -> tuple[int, int, int]:
        if s == "ws-fanout":
            return (1, 0, 0)
        parts = s.split("-")  # ws-echo-<size>-c<conns>
        try:
            return (0, int(parts[3][1:]), int(parts[2]))
        except (IndexError, ValueError):
            return (0, 0, 0)
    return sorted((s for s in run.ws if any(i in ids for i in run.ws[s])), key=key)


def ws_size_text(size: str) -> str:
    n = int(num(size) or 0)
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def ws_scen_title(run: Run, scen: str) -> str:
    any_row = next((r for ids in run.ws.get(scen, {}).values() for r in ids.values()), {})
    if scen == "ws-fanout":
        return (f"Fan-out: one publisher, {any_row.get('conns', '?')} subscribers of /ws/chat/bench "
                f"({any_row.get('inflight', '?')} of the publisher's messages in flight, {any_row.get('size', '?')}-digit texts)")
    return (f"Echo: {ws_size_text(any_row.get('size', '0'))} binary messages, {any_row.get('conns', '?')} connections × "
            f"{any_row.get('inflight', '?')} in flight")


def ws_short(run: Run, scen: str) -> str:
    any_row = next((r for ids in run.ws.get(scen, {}).values() for r in ids.values()), {})
    if scen == "ws-fanout":
        return f"fan-out to {any_row.get('conns', '?')}"
    return f"echo {ws_size_text(any_row.get('size', '0'))} × {any_row.get('conns', '?')} conns"


def ws_ids(run: Run) -> list[str]:
    return [i for g in WS_GROUPS for i in run.ids(g) if run.servers[i]["status"] != "not selected"]


def ws_table(run: Run, scen: str) -> list[str]:
    fan = scen == "ws-fanout"
    mib = lambda v: fmt((num(v) or 0) / 1024, 1) if num(v) is not None else "NA"  # noqa: E731
    if fan:
        out = ["| language | server | deliveries/s | published/s | deliveries ÷ (published × subscribers) | p50 (µs) | p99 (µs) "
               "| server CPU µs / delivery | server CPU % | client CPU % | RSS after / peak (MiB) "
               "| quicklane C ÷ this (same round) | by CPU | notes |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    else:
        out = ["| language | server | msg/s | MiB/s (one way) | p50 (µs) | p99 (µs) | server CPU µs / msg | server CPU % "
               "| client CPU % | RSS after / peak (MiB) | quicklane C ÷ this (msg/s, same round) | by CPU | notes |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    n = 0
    for sid in ws_ids(run):
        s = run.servers[sid]
        name = f"**{s['desc']}**" if s["role"] == "ql" else s["desc"]
        lang = WS_LANG.get(sid, "")
        row = run.ws_median(scen, sid)
        cols = 14 if fan else 13
        if row is None:
            why = s["status"] if s["status"] != "ok" else "not run"
            out.append(f"| {lang} | {name} |" + " — |" * (cols - 3) + f" {why} |")
            continue
        n += 1
        ratio = cpu_ratio = "—"
        if s["role"] == "peer" and run.ws.get(scen, {}).get("ws-ql-c"):
            r, vals = run.ws_paired(scen, "ws-ql-c", sid)
            c, _ = run.ws_paired(scen, "ws-ql-c", sid, field="cpu", invert=True)
            ratio = fmt_ratio(r) + (f" ({' '.join(f'{v:.2f}' for v in vals)})" if len(vals) > 1 else "")
            cpu_ratio = fmt_ratio(c)
        rounds = run.ws[scen][sid]
        notes = ws_row_notes(run, scen, sid, rounds)
        rss = f"{mib(row['rss'])} / {mib(row['peak'])}"
        if fan:
            pub, dl, subs = num(row.get("published")), num(row.get("msgs")), num(row.get("conns"))
            compl = f"{dl / (pub * subs):.3f}" if pub and dl is not None and subs else "NA"
            out.append(f"| {lang} | {name} | {fmt(num(row['rate']))} | {fmt(num(row['pubs']))} | {compl} | {fmt(num(row['p50']))} "
                       f"| {fmt(num(row['p99']))} | {row.get('cpu', 'NA')} | {row.get('scpu', 'NA')} | {row.get('ccpu', 'NA')} "
                       f"| {rss} | {ratio} | {cpu_ratio} | {'; '.join(notes)} |")
        else:
            out.append(f"| {lang} | {name} | {fmt(num(row['rate']))} | {row.get('mibs', 'NA')} | {fmt(num(row['p50']))} "
                       f"| {fmt(num(row['p99']))} | {row.get('cpu', 'NA')} | {row.get('scpu', 'NA')} | {row.get('ccpu', 'NA')} "
                       f"| {rss} | {ratio} | {cpu_ratio} | {'; '.join(notes)} |")
    return out if n or len(out) > 2 else ["Not run (not selected)."]


def ws_summary_table(run: Run) -> list[str]:
    scens = ws_scens(run)
    if not scens:
        return []
    out = ["| language | server | " + " | ".join(ws_short(run, s) for s in scens) + " | RSS per idle WebSocket |",
           "|---|---|" + "---:|" * (len(scens) + 1)]
    for sid in ws_ids(run):
        s = run.servers[sid]
        name = f"**{s['desc'].split(' (')[0]}**" if s["role"] == "ql" else s["desc"].split(" (")[0]
        cells = []
        for scen in scens:
            row = run.ws_median(scen, sid)
            v = num(row["rate"]) if row else None
            cells.append("—" if v is None else f"{v / 1000:.0f}k" + (f" ({row['cpu']} µs)" if row.get("cpu") not in (None, "NA") else ""))
        d = run.ws_idle.get(sid)
        cells.append(f"{d['per']} B" if d and d.get("per") not in (None, "NA") else "—")
        out.append(f"| {WS_LANG.get(sid, '')} | {name} | " + " | ".join(cells) + " |")
    return out


def ws_idle_table(run: Run, settings: dict[str, str]) -> list[str]:
    out = ["| language | server | RSS before (KiB) | RSS with the sockets (KiB) | bytes / socket | opened | still open at the end | errors | target |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    n = 0
    for sid in ws_ids(run):
        s = run.servers[sid]
        name = f"**{s['desc']}**" if s["role"] == "ql" else s["desc"]
        d = run.ws_idle.get(sid)
        if not d:
            out.append(f"| {WS_LANG.get(sid, '')} | {name} | — | — | — | — | — | — | {s['status'] if s['status'] != 'ok' else 'not run'} |")
            continue
        n += 1
        per = num(d.get("per"))
        tgt = ""
        if sid == "ws-ql-c":
            tgt = f"≤ {WS_IDLE_LIMIT} B: " + ("no value" if per is None else ("PASS" if per <= WS_IDLE_LIMIT else "MISS"))
        out.append(f"| {WS_LANG.get(sid, '')} | {name} | {d['before']} | {d['with']} | {d['per']} | {d['opened']} | {d['held']} "
                   f"| {d['errors']} | {tgt} |")
    return out if n or len(out) > 2 else ["Not run (not selected)."]


def ws_target_rows(run: Run) -> list[str]:
    out = []
    for scen in ws_scens(run):
        targets = WS_FANOUT_TARGETS if scen == "ws-fanout" else WS_ECHO_TARGETS
        for q, p, lim, text in targets:
            r, vals = run.ws_paired(scen, q, p)
            c, _ = run.ws_paired(scen, q, p, field="cpu", invert=True)
            res = verdict(run, scen, q, p, r, lim)
            out.append(f"| WebSocket {ws_short(run, scen)}: {text} (§10) | {fmt_ratio(r)} "
                       f"| {' '.join(f'{v:.2f}' for v in vals)} | {fmt_ratio(c)} | {res} |")
    d = run.ws_idle.get("ws-ql-c")
    if d is not None or ws_scens(run):
        per = num(d.get("per")) if d else None
        res = "no value" if per is None else ("PASS" if per <= WS_IDLE_LIMIT else "MISS")
        held = f" ({d.get('opened')} opened)" if d else ""
        out.append(f"| WebSocket: ≤ 1 KB of server RSS per idle WebSocket, quicklane C{held} (§10) "
                   f"| {d.get('per') if d else 'NA'} B | | | {res} |")
    return out


def ws_section(run: Run, settings: dict[str, str], standalone: bool = False) -> list[str]:
    m = run.meta
    L = ["## 10. WebSockets (issue 16)", ""]
    if standalone or m.get("only"):
        L += [f"Run: {m.get('date', '?')}, `{m.get('command', '?')}` "
              f"({'smoke run; ' if m.get('smoke') == '1' else ''}{' '.join(kv for kv in m.get('settings', '').split() if kv.startswith('WS_') or kv.startswith('PRIME'))}); "
              f"quicklane rev {m.get('rev', '?')}; {m.get('nproc', '?')} CPU ({m.get('cpu', '?')}), {m.get('kernel', '?')}"
              + ("; §1–§9 come from the run above, not this one." if standalone else "."), ""]
    vers = m.get("ws_peers", "")
    L += ["`bench/ws_client.c` (plain C, one epoll thread on the client CPU, RFC 6455 frames of its own, masked) against",
          "the WebSocket part of the example contract: `GET /ws/echo` sends each message back, `GET /ws/chat/{room}`",
          "publishes each message to every member of the room as `{\"room\":…,\"from\":n,\"text\":…}`. quicklane C is",
          "`examples/c` (`WORKERS=1`; its `/ws/echo` offers permessage-deflate, which the client does not ask for, so",
          "every server runs without compression). Peers, each with its defaults: Bun's own server (`Bun.serve` with",
          "`websocket` handlers, `server.publish` for the room; `bench/peers/node/ws_bun.js`, the `bun` binary of the npm",
          "package), `ws` (npm) on node:http (`ws_echo_ws.js`), `websockets` (PyPI, asyncio; `ws_websockets.py`) and",
          "uWebSockets through socketify (PyPI, a C++ core called from Python; `ws_socketify.py`, when it installs)"
          + (f". Versions: {vers}." if vers else "."),
          "One worker / process each, pinned: every server on CPU 0, the client on CPU 1.", "",
          f"- **echo**: connections each keep {settings.get('WS_INFLIGHT', '8')} binary messages in flight (one more sent per echo",
          "  back); every echo is checked byte for byte and in order; latency = arrival − the send time stamped in the",
          "  payload. *msg/s* counts echoes received in the measured window "
          f"({settings.get('WS_DURATION', '?')} s after a separate {settings.get('WS_WARMUP', '?')} s run to warm up;",
          f"  {settings.get('WS_ROUNDS', '?')} rounds, order reversed every other round).",
          f"- **fan-out**: {settings.get('WS_FANOUT', '?')} subscribers and one publisher in the room `bench`; the publisher sends",
          f"  as fast as it can with at most {settings.get('WS_INFLIGHT', '8')} of its own messages not yet come back; *deliveries/s*",
          "  counts messages received by the subscribers (each checked: JSON fields, times never going back). A ratio of",
          "  deliveries ÷ (published × subscribers) below 1 means messages dropped by the server (quicklane and Bun drop",
          "  a send to a socket over its backpressure limit: 1 MiB and 16 MiB by default) or still queued at the end.",
          f"- **idle**: {settings.get('WS_IDLE', '?')} WebSockets opened on `/ws/echo` of the freshly started server and held;",
          "  bytes / socket = (RSS with them − RSS before) ÷ sockets.",
          "",
          "Columns: *server CPU µs / msg* = utime + stime of the server's processes (`/proc/<pid>/stat`) over the measured",
          "run (its connects and closes included) ÷ messages; *server CPU %* and *client CPU %* (of one CPU) over the",
          "run: a client near 100 % is the limit, not the server, and the CPU per message then compares the servers",
          "better than msg/s. *RSS after / peak*: all the server's processes, after the run / the run's peak (VmHWM",
          "reset first). Values are the round with the median msg/s; ratios pair rounds (median over rounds); *by CPU*",
          "= this server's CPU per message over quicklane's.", ""]
    scens = ws_scens(run)
    if not scens and not run.ws_idle:
        return L + ["Not run (not selected).", ""]
    L += ["### Summary: thousand msg/s (server CPU µs per message), median round", "", *ws_summary_table(run), ""]
    for scen in scens:
        L += [f"### {ws_scen_title(run, scen)}", "", *ws_table(run, scen), ""]
    L += [f"### {settings.get('WS_IDLE', '?')} idle WebSockets", "", *ws_idle_table(run, settings), ""]
    probes = [p for p in run.probes if p and p[0].startswith("ws-") and len(p) > 2 and p[2] != "ok"]
    if probes:
        L += ["Checks that failed before the runs:", ""] + [f"- `{p[0]}` {p[1]}: `{p[3] if len(p) > 3 else ''}`" for p in probes] + [""]
    return L


def wsl_ids(run: Run) -> list[str]:
    return [i for g in WSL_GROUPS for i in run.ids(g) if run.servers[i]["status"] != "not selected"]


def wsl_scens(run: Run) -> list[str]:
    """The per-language sub-scenarios: both when the group was selected (rows say why one is empty)."""
    return WSL_SCENS if wsl_ids(run) else []


def wsl_short(run: Run, scen: str, settings: dict[str, str]) -> str:
    rows = [r for i, rr in run.ws.get(scen, {}).items() if i.startswith("wsl-") for r in rr.values()]
    if scen == "ws-fanout":
        return f"fan-out to {rows[0].get('conns') if rows else settings.get('WS_FANOUT', '?')}"
    return "echo 1 KiB × 64 conns"


def wsl_vs(run: Run, scen: str, q: str, p: str) -> tuple[float | None, list[float], float | None]:
    r, vals = run.ws_paired(scen, q, p)
    c, _ = run.ws_paired(scen, q, p, field="cpu", invert=True)
    return r, vals, c


def wsl_table(run: Run, scen: str) -> list[str]:
    fan = scen == "ws-fanout"
    mib = lambda v: fmt((num(v) or 0) / 1024, 1) if num(v) is not None else "NA"  # noqa: E731
    head = ("| language | server | deliveries/s | published/s | deliveries ÷ (published × subscribers) " if fan
            else "| language | server | msg/s | MiB/s (one way) ")
    out = [head + "| p50 (µs) | p99 (µs) | server CPU µs / msg | server CPU % | client CPU % | RSS after / peak (MiB) "
           "| quicklane ÷ this (same round; per round) | by CPU | notes |",
           "|---|---|" + "---:|" * (3 if fan else 2) + "---:|" * 6 + "---|---|---|"]
    cols = 14 if fan else 13
    for sid in wsl_ids(run):
        s = run.servers[sid]
        name = f"**{s['desc']}**" if s["role"] == "ql" else s["desc"]
        lang = WSL_LANG.get(sid, "")
        row = run.ws_median(scen, sid)
        if row is None:
            why = s["status"] if s["status"] != "ok" else "not run"
            out.append(f"| {lang} | {name} |" + " — |" * (cols - 3) + f" {why} |")
            continue
        ratios, cpus = [], []
        for q, p, _, _ in WSL_TARGETS:
            if p != sid or not run.ws.get(scen, {}).get(q):
                continue
            r, vals, c = wsl_vs(run, scen, q, p)
            ratios.append(f"{WSL_SHORT[q]} {fmt_ratio(r)}" + (f" ({' '.join(f'{v:.2f}' for v in vals)})" if len(vals) > 1 else ""))
            cpus.append(f"{WSL_SHORT[q]} {fmt_ratio(c)}")
        rounds = run.ws[scen][sid]
        notes = ws_row_notes(run, scen, sid, rounds, s["status"])
        rss = f"{mib(row['rss'])} / {mib(row['peak'])}"
        if fan:
            pub, dl, subs = num(row.get("published")), num(row.get("msgs")), num(row.get("conns"))
            compl = f"{dl / (pub * subs):.3f}" if pub and dl is not None and subs else "NA"
            lead = f"| {lang} | {name} | {fmt(num(row['rate']))} | {fmt(num(row['pubs']))} | {compl} "
        else:
            lead = f"| {lang} | {name} | {fmt(num(row['rate']))} | {row.get('mibs', 'NA')} "
        out.append(lead + f"| {fmt(num(row['p50']))} | {fmt(num(row['p99']))} | {row.get('cpu', 'NA')} | {row.get('scpu', 'NA')} "
                   f"| {row.get('ccpu', 'NA')} | {rss} | {'; '.join(ratios) or '—'} | {'; '.join(cpus) or '—'} | {'; '.join(notes)} |")
    return out


def wsl_summary_table(run: Run, settings: dict[str, str]) -> list[str]:
    scens = wsl_scens(run)
    out = ["| language | server | " + " | ".join(wsl_short(run, s, settings) for s in scens) + " |",
           "|---|---|" + "---:|" * len(scens)]
    for sid in wsl_ids(run):
        s = run.servers[sid]
        name = WSL_SHORT.get(sid, sid)
        name = f"**{name}**" if s["role"] == "ql" else name
        cells = []
        for scen in scens:
            row = run.ws_median(scen, sid)
            v = num(row["rate"]) if row else None
            cells.append("—" if v is None else f"{v / 1000:.1f}k" + (f" ({row['cpu']} µs)" if row.get("cpu") not in (None, "NA") else ""))
        out.append(f"| {WSL_LANG.get(sid, '')} | {name} | " + " | ".join(cells) + " |")
    return out


def wsl_ratio_table(run: Run, settings: dict[str, str]) -> list[str]:
    scens = wsl_scens(run)
    out = ["| comparison (msg/s, same round) | target | " + " | ".join(wsl_short(run, s, settings) for s in scens) + " |",
           "|---|---|" + "---|" * len(scens)]
    for q, p, lim, text in WSL_TARGETS:
        cells = []
        for scen in scens:
            r, vals, c = wsl_vs(run, scen, q, p)
            if r is None:
                cells.append("no value")
                continue
            res = "" if lim is None else (" PASS" if r >= lim else " MISS")
            cells.append(f"{fmt_ratio(r)}{res}" + (f" ({' '.join(f'{v:.2f}' for v in vals)})" if len(vals) > 1 else "")
                         + f"; by CPU {fmt_ratio(c)}")
        out.append(f"| {WSL_SHORT[q]} ÷ {WSL_SHORT[p]} | {'—' if lim is None else f'≥ {lim:g}×'} | " + " | ".join(cells) + " |")
    return out


def ws_lang_target_rows(run: Run) -> list[str]:
    out = []
    settings = dict(kv.split("=", 1) for kv in run.meta.get("settings", "").split() if "=" in kv)
    for scen in wsl_scens(run):
        for q, p, lim, text in WSL_TARGETS:
            r, vals, c = wsl_vs(run, scen, q, p)
            res = verdict(run, scen, q, p, r, lim)
            out.append(f"| {'(info) ' if lim is None else ''}{text}, WebSocket {wsl_short(run, scen, settings)} {WSL_MARK} "
                       f"| {fmt_ratio(r)} | {' '.join(f'{v:.2f}' for v in vals)} | {fmt_ratio(c)} | {res} |")
    return out


def ws_lang_section(run: Run, settings: dict[str, str], standalone: bool = False) -> list[str]:
    """§10's per-language part (a ### subsection between the WSL_BEGIN and WSL_END markers)."""
    m = run.meta
    L = [WSL_BEGIN, "### WebSockets per language: the Python, Node and Go bindings (issue 17)", ""]
    if not wsl_ids(run):
        return L + ["Not run (not selected).", "", WSL_END]
    if standalone or m.get("only"):
        L += [f"Run: {m.get('date', '?')}, `{m.get('command', '?')}` "
              f"({'smoke run; ' if m.get('smoke') == '1' else ''}{' '.join(kv for kv in m.get('settings', '').split() if (kv.startswith('WS_') or kv.startswith('PRIME')) and kv.split('=')[0] not in ('WS_SIZES', 'WS_CONNS', 'WS_IDLE', 'WS_IDLE_HOLD'))}); "
              f"quicklane rev {m.get('rev', '?')}; {m.get('nproc', '?')} CPU ({m.get('cpu', '?')}), {m.get('kernel', '?')}"
              + ("; the rest of the file comes from other runs." if standalone else "."), ""]
    vers = "; ".join(v for v in (m.get("ws_lang_peers", ""), m.get("ws_peers", "")) if v)
    L += ["The same client (`bench/ws_client.c`) and two of the sub-scenarios above, per language, each quicklane front",
          "end against the usual server of its language, in one run: **echo** of 1 KiB binary messages over 64",
          f"connections ({settings.get('WS_INFLIGHT', '8')} in flight each) and the **fan-out** to "
          f"{settings.get('WS_FANOUT', '?')} subscribers of one room (`/ws/chat/bench`), {settings.get('WS_ROUNDS', '?')} rounds of "
          f"{settings.get('WS_DURATION', '?')} s (after {settings.get('WS_WARMUP', '?')} s unmeasured), order reversed every other round; no idle test.",
          "One worker / process each, pinned (server CPU 0, client CPU 1). Servers:",
          "- Python: `examples/python/hello.py` (`@app.websocket`, the room through `ws.subscribe` / `app.publish`);",
          "  `examples/python/fastapi_app.py`'s FastAPI app (`api`, plain FastAPI `@api.websocket` endpoints, the room a",
          "  set of WebSockets sent to one by one) unchanged under `python -m quicklane fastapi_app:api --interface asgi`",
          "  and under uvicorn[standard] (`--loop uvloop --http httptools`, its default `--ws auto`), both with the peers'",
          "  FastAPI; `websockets` (PyPI, asyncio server, `broadcast`; `bench/peers/python/ws_websockets.py`).",
          "- Node: `examples/node/hello.js` (`app.ws`, `ws.subscribe` / publish); `ws` (npm) on node:http",
          "  (`ws_echo_ws.js`); Bun (`Bun.serve`, `server.publish`; `ws_bun.js`), reported, no target.",
          "- Go: `examples/go/hello` (`app.WS`, `Subscribe` / `Publish`); gorilla/websocket (`bench/peers/go/wsgorilla`:",
          "  gorilla's echo and chat shapes, a PreparedMessage per room message, a writer goroutine per member) on net/http",
          "  and the same program through `quicklane.ListenAndServe` (the adapter's `http.Hijacker`); `GOMAXPROCS=1`."
          + (f" Versions: {vers}." if vers else ""),
          "",
          "Each server is checked first (a 1 KiB echo byte for byte, a room of 3 with every delivery's JSON checked); one",
          "that does not start or fails a check is not measured there and its row says why. Columns as above; *quicklane ÷",
          "this*: on a peer's row, each quicklane front end of its language over it, msg/s (fan-out: deliveries/s) in the",
          "same round, median over rounds; *by CPU*: the peer's CPU per message over quicklane's.", ""]
    L += ["#### Summary: thousand msg/s (server CPU µs per message), median round", "", *wsl_summary_table(run, settings), ""]
    L += ["#### Ratios (targets of issue 17)", "", *wsl_ratio_table(run, settings), ""]
    for scen in wsl_scens(run):
        title = (f"Fan-out: one publisher, {wsl_short(run, scen, settings).split()[-1]} subscribers of /ws/chat/bench"
                 if scen == "ws-fanout" else "Echo: 1 KiB binary messages, 64 connections")
        L += [f"#### {title}", "", *wsl_table(run, scen), ""]
    probes = [p for p in run.probes if p and p[0].startswith("wsl-") and len(p) > 2 and p[2] != "ok"]
    if probes:
        L += ["Checks that failed before the runs:", ""] + [f"- `{p[0]}` {p[1]}: `{p[3] if len(p) > 3 else ''}`" for p in probes] + [""]
    return L + [WSL_END]


def _targets_table_span(lines: list[str], path: str) -> tuple[int, int]:
    tgt = next((i for i, t in enumerate(lines) if t.startswith("## Targets")), None)
    if tgt is None:
        raise SystemExit(f"report.py: no '## Targets' section in {path}")
    first = next(i for i in range(tgt, len(lines)) if lines[i].startswith("|"))
    last = first
    while last + 1 < len(lines) and lines[last + 1].startswith("|"):
        last += 1
    return first, last


def _ws_lang_block(lines: list[str]) -> tuple[int, int] | None:
    """The [begin, end] lines of the per-language part, markers included, or None."""
    b = next((i for i, t in enumerate(lines) if t.strip() == WSL_BEGIN), None)
    e = next((i for i in range(b or 0, len(lines)) if lines[i].strip() == WSL_END), None) if b is not None else None
    return (b, e) if b is not None and e is not None else None


def splice_ws_lang(path: str, block: list[str], rows: list[str]) -> None:
    """Puts §10's per-language part (replacing one already there; else at the end of §10, or in a
    new §10 before the targets) and its target rows (replacing earlier ones, at the end of the
    targets table); nothing else of the file changes."""
    lines = open(path, encoding="utf-8").read().split("\n")
    blk = list(block)
    span = _ws_lang_block(lines)
    if span is not None:
        lines[span[0]:span[1] + 1] = blk
    else:
        start = next((i for i, t in enumerate(lines) if t.startswith("## 10. ")), None)
        if start is None:
            tgt = next((i for i, t in enumerate(lines) if t.startswith("## Targets")), None)
            if tgt is None:
                raise SystemExit(f"report.py: no '## Targets' section in {path}")
            lines[tgt:tgt] = ["## 10. WebSockets", ""] + blk + [""]
        else:
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            while end > start + 1 and lines[end - 1] == "":
                end -= 1
            lines[end:end] = [""] + blk
    first, last = _targets_table_span(lines, path)
    table = [t for t in lines[first:last + 1] if WSL_MARK not in t]
    lines[first:last + 1] = table + rows
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def splice_ws(path: str, section: list[str], rows: list[str]) -> None:
    """Puts §10 (replacing one already there, but keeping its per-language part) before the
    targets, and the WebSocket target rows (replacing earlier ones, before the per-language rows)
    in the targets table; nothing else of the file changes."""
    lines = open(path, encoding="utf-8").read().split("\n")
    kept: list[str] = []
    start = next((i for i, t in enumerate(lines) if t.startswith("## 10. ")), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        span = _ws_lang_block(lines[start:end])
        if span is not None:
            kept = lines[start + span[0]:start + span[1] + 1]
        del lines[start:end]
    tgt = next((i for i, t in enumerate(lines) if t.startswith("## Targets")), None)
    if tgt is None:
        raise SystemExit(f"report.py: no '## Targets' section in {path}")
    sec = list(section)
    while sec and sec[-1] == "":
        sec.pop()
    if kept:
        sec += [""] + kept
    lines[tgt:tgt] = sec + [""]
    first, last = _targets_table_span(lines, path)
    table = [t for t in lines[first:last + 1] if not t.startswith("| WebSocket")]
    if table and table[0].startswith("| target | measured") and "WebSockets" not in table[0]:
        table[0] = ("| target | measured (rps ratio; uploads: MiB/s ratio; WebSockets: msg/s ratio; median of rounds) | per round "
                    "| by CPU µs/req (uploads: ms/MiB; WebSockets: µs/msg) | result |")
    at = next((k for k, t in enumerate(table) if WSL_MARK in t), len(table))
    lines[first:last + 1] = table[:at] + rows + table[at:]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def intro_of(path: str | None) -> str:
    if path and os.path.exists(path):
        text = open(path, encoding="utf-8").read()
        if "<!-- intro -->" in text and "<!-- /intro -->" in text:
            return text.split("<!-- intro -->", 1)[1].split("<!-- /intro -->", 1)[0].strip("\n") + "\n"
    return DEFAULT_INTRO


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--png", required=True)
    ap.add_argument("--intro")
    ap.add_argument("--splice-ws", metavar="DOCS_MD",
                    help="also splice §10 (WebSockets) and its target rows into this existing file (keeping §10's per-language part)")
    ap.add_argument("--splice-ws-lang", metavar="DOCS_MD",
                    help="also splice §10's per-language part (ws-lang) and its target rows into this existing file")
    a = ap.parse_args()
    run = Run(a.raw)
    m = run.meta
    chart_note = chart(run, a.png)
    L: list[str] = ["# Benchmarks", "", "<!-- intro -->", intro_of(a.intro).rstrip("\n"), "<!-- /intro -->", ""]
    L.append("<!-- Everything below is generated by bench/run (bench/report.py); edit the intro above only. -->")
    L.append("")
    L.append(f"## The run: {m.get('date', '?')}")
    L.append("")
    if m.get("smoke") == "1" or m.get("only"):
        L.append(f"**{'Smoke run' if m.get('smoke') == '1' else 'Partial run'}**"
                 f"{' (--only ' + m['only'] + ')' if m.get('only') else ''}: it proves the harness; the numbers mean little.")
        L.append("")
    L.append(f"- command: `{m.get('command', '?')}` ({m.get('settings', '')})")
    L.append(f"- machine: {m.get('nproc', '?')} CPU ({m.get('cpu', '?')}), {m.get('kernel', '?')}, {m.get('ram', '?')} RAM")
    L.append(f"- quicklane: rev {m.get('rev', '?')}")
    L.append(f"- pinning: {m.get('pinning', '')}; all-cores scenario: no pinning, the servers and wrk "
             f"({m.get('nproc', '?')} threads) share the {m.get('nproc', '?')} cores")
    L.append(f"- load: {m.get('wrk', 'wrk')} `-t1 -c64 --latency` (all cores: `-t{m.get('nproc', '?')} -c128`), "
             "rounds in reverse order every other round; fixed-rate scenario: bench/rate_client.c (open loop)")
    vers = [f"nginx {m.get('nginx', '?').replace('nginx/', '')}", f"cpp-httplib {m.get('httplib', '?')}"]
    if m.get("python_peers"):
        vers.append(m["python_peers"] + (f" (quicklane's Python: {m['python_ql']})" if m.get("python_ql") else ""))
    if m.get("node", "").strip():
        vers.append("Node " + m["node"].strip())
    if m.get("go"):
        vers.append(m["go"])
    L.append("- versions: " + "; ".join(vers))
    busy = m.get("busy_before", "?")
    L.append(f"- other load: CPUs {busy} % busy in the 3 s before the run; load average {m.get('load_start', '?')} at start, "
             f"{m.get('load_end', '?')} at the end")
    L.append(f"- wall time: {int(num(m.get('run_time')) or 0) // 60} min {int(num(m.get('run_time')) or 0) % 60} s "
             f"(measuring {int(num(m.get('measure_time')) or 0)} s; estimated {int(num(m.get('estimate')) or 0)} s)")
    L.append("")
    if run.contended:
        total = (sum(len(r) for ids in run.runs.values() for r in ids.values()) + sum(len(r) for r in run.rate.values())
                 + sum(len(r) for ids in run.upload.values() for r in ids.values())
                 + sum(len(r) for ids in run.ws.values() for r in ids.values()))
        if len(run.contended) <= 10:
            which = ", ".join(sorted(run.contended))
        else:
            per: dict[str, int] = defaultdict(int)
            for c in run.contended:
                per[c.split("/")[0]] += 1
            which = "; ".join(f"{k}: {v}" for k, v in sorted(per.items())) + "; each row's notes name its rounds"
        L.append(f"**Contention: other work used ≥ {m.get('contended_pct', '10')} % of a CPU during "
                 f"{len(run.contended)} of {total} runs** ({which}). Their rps is not to be "
                 "trusted; rerun on a quiet machine (`QUIET_WAIT=300 bench/run`).")
    elif (num(busy) or 0) >= 10:
        L.append(f"**The machine was {busy} % busy before the run**: rps may be skewed.")
    else:
        L.append("No measured run was contended (other processes stayed under "
                 f"{m.get('contended_pct', '10')} % of a CPU during every one-worker run).")
    L.append("")
    if not chart_note:
        L += [f"![quicklane vs peers: median rps per scenario]({os.path.basename(a.png)})", ""]
    else:
        L += [f"({chart_note})", ""]
    L += [
        "Columns: *rps*, *p50*, *p99*, *RSS after* (all the server's processes) and *server CPU µs/req* (user +",
        "system time of the server's processes per request) come from the round with the median rps. *quicklane ÷",
        "this server*: on a peer's row, each quicklane front end's rps over this peer's in the same round, median",
        "over rounds (above 1: quicklane served more). quicklane's rows are in bold.",
        "",
    ]
    sections = [
        ("1. GET /ping — static answer (quicklane: native static route; peers: their own handler or `return`)", "ping", ONE_WORKER_GROUPS),
        ("2. GET /hello/{name} — JSON built by host-language code", "hello", ONE_WORKER_GROUPS),
        ("3. POST /echo — a 1 KB JSON body parsed and re-encoded by host code", "echo", ONE_WORKER_GROUPS),
    ]
    for title, scen, groups in sections:
        L += [f"## {title}", "", *scenario_table(run, scen, groups), ""]
    settings = dict(kv.split("=", 1) for kv in m.get("settings", "").split() if "=" in kv)
    L += [f"## 4. {settings.get('IDLE_CONNS', '?')} idle keep-alive connections", "",
          "Each server freshly started; `bench/idle_conns.c` opens the connections one by one (one request each),",
          f"then times {settings.get('IDLE_TRIES', '21')} new connections' `GET /ping` while they are held; "
          "bytes / conn = RSS growth / connections (a server that stops serving new connections ends the opening",
          "after 3 failures in a row: *conns held* then says how many it took).",
          "", *idle_table(run), ""]
    L += [f"## 5. Latency at a fixed rate: {settings.get('RATE', '?')} requests/s on GET /hello/x", "",
          f"`bench/rate_client.c`: {settings.get('RATE_CONNS', '?')} keep-alive connections share a constant total rate "
          "(open loop, as wrk2); each request's latency counts from its *intended* send time, so a stalled server is",
          f"charged for the requests it delayed (no coordinated omission). {settings.get('RATE_DURATION', '?')} s measured "
          f"after {settings.get('RATE_WARMUP', '?')} s, {settings.get('ROUNDS', '?')} rounds (order reversed every other "
          "round); achieved rps, p50, p99 and p99.9 are medians over the rounds (each round's are listed), max is the",
          "worst round's. The rate is one every one-worker server here sustains (FastAPI on "
          "uvicorn, the slowest, serves about 3k rps on /hello).", "", *rate_table(run), ""]
    L += ["## 6. All cores: workers = nproc", "",
          "quicklane C (`WORKERS=nproc`), nginx (`worker_processes nproc`), quicklane Go and net/http (`GOMAXPROCS=nproc`),",
          "quicklane Node and Fastify under `node:cluster` (nproc processes), quicklane Python (`WORKERS=nproc` loops;",
          "one interpreter) and Granian RSGI (`--workers nproc`). **Not pinned: the load generator (wrk, nproc threads)",
          "and the server share the cores**, so these rps are lower than the cores could serve and favour servers that",
          "use less CPU per request. GET /hello/x.", "", *scenario_table(run, "allcores", ALL_GROUPS), ""]
    L += ["## 7. Existing apps: one FastAPI app and one Flask app, unchanged, under each server", "",
          "`bench/peers/python/asgi_app.py` (FastAPI) under `python -m quicklane --interface asgi`, uvicorn[standard] and",
          "Granian `--interface asgi`; `bench/peers/python/wsgi_app.py` (Flask) under `python -m quicklane --interface wsgi`,",
          "gunicorn (1 sync worker, which closes every connection after its response, as sync workers do) and Granian",
          "`--interface wsgi`. One worker each, pinned.", "",
          "### GET /hello/x", "", *scenario_table(run, "apps-hello", APP_GROUPS), "",
          "### POST /echo (1 KB JSON)", "", *scenario_table(run, "apps-echo", APP_GROUPS), ""]
    L += ["## 8. Native rules (the fast path, issue 9)", "",
          "One worker each, pinned. quicklane Python is `examples/python/fastpath.py` (a pydantic model parameter: the",
          "body is validated natively, then the `def` handler builds the item); its peer is",
          "`bench/peers/python/fastapi_items.py`, the same pydantic model on FastAPI (`async def`) under uvicorn[standard].",
          "The C rows are `examples/c/fastpath.c` run in `bench/out/fastpath-www/`; nginx serves the same folder",
          "(`bench/peers/nginx/fastpath.conf.in`, `gzip_static on`). The 10 KB text file and its `.gz` are written at",
          "run time; both servers send the `.gz` bytes.", "",
          "### Invalid POST /items (three errors: 422 natively / by pydantic)", "",
          'Body `{"name":"","price":-1,"tags":["a",1],"extra":true}`: every answer is a 422 (non-2xx is expected here).', "",
          *scenario_table(run, "fp-invalid", FP_GROUPS, only=FP_PY), "",
          "### Valid POST /items (201 from host code)", "", *scenario_table(run, "fp-valid", FP_GROUPS, only=FP_PY), "",
          "### GET /cached/a (native cache hit, 2 s TTL) and GET /ping (native static route), C example", "",
          "The cache-hit target pairs the two rows of the same server in the same round (see the targets).", "",
          "#### /cached/a", "", *scenario_table(run, "fp-cache", FP_GROUPS, only=("fp-ql-c",)), "",
          "#### /ping", "", *scenario_table(run, "fp-ping", FP_GROUPS, only=("fp-ql-c",)), "",
          "### GET /static/file-10k.txt with Accept-Encoding: gzip", "", *scenario_table(run, "fp-static", FP_GROUPS, only=("fp-ql-c", "fp-nginx")), "",
          "### GET /static/file-8m.bin (8 MiB; no target, informational)", "",
          "Above the 4 MiB quicklane keeps in memory, so quicklane sends it from the page cache with `sendfile(2)`;",
          "nginx does too for this file (`sendfile on; tcp_nopush on;`, as Debian's `nginx.conf`). nginx's",
          "copying mode (`sendfile off`, its built-in default, kept for the 10 KB file) can be faster on loopback;",
          "over a real NIC sendfile saves the copy.", "",
          *scenario_table(run, "fp-large", FP_GROUPS, only=("fp-ql-c", "fp-nginx")), ""]
    L += upload_section(run, settings)
    L += ws_section(run, settings)
    L += ws_lang_section(run, settings) + [""]
    L += ["## Targets (from the issues; informational)", "", *targets_table(run), ""]
    missing = [(i, s) for i, s in run.servers.items() if s["status"] not in ("ok", "not selected")]
    if missing:
        L += ["## Servers not measured or in trouble", ""]
        L += [f"- `{i}` ({s['desc']}): {s['status']}" for i, s in missing]
        L.append("")
    if run.probes:
        L += ["## Responses checked before the runs (status, content type, body)", ""]
        bad = [p for p in run.probes if len(p) > 2 and p[2] != "ok"]
        L.append(f"{len(run.probes)} responses checked, {len(bad)} differ from the example contract"
                 f"{' (a `charset=utf-8` parameter on the content type is accepted)' if True else ''}.")
        for p in bad:
            L.append(f"- `{p[0]}` {p[1]}: `{p[3] if len(p) > 3 else ''}`")
        L.append("")
    L.append(f"Raw outputs and every server's log of this run: `bench/out/{os.path.basename(os.path.normpath(run.raw))}/`.")
    L.append("")
    with open(a.md, "w", encoding="utf-8") as f:
        f.write("\n".join(L))
    print(f"report.py: wrote {a.md}" + (f" and {a.png}" if not chart_note else f" ({chart_note})"))
    if a.splice_ws:
        splice_ws(a.splice_ws, ws_section(run, settings, standalone=True), ws_target_rows(run))
        print(f"report.py: spliced §10 (WebSockets) and {len(ws_target_rows(run))} target rows into {a.splice_ws}")
    if a.splice_ws_lang:
        rows = ws_lang_target_rows(run)
        splice_ws_lang(a.splice_ws_lang, ws_lang_section(run, settings, standalone=True), rows)
        print(f"report.py: spliced §10's per-language part (WebSockets from the bindings) and {len(rows)} target rows into {a.splice_ws_lang}")


if __name__ == "__main__":
    main()
