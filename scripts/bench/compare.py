#!/usr/bin/env python3
"""Issue 12's figures for P-8 side by side with Nchan, Pushpin and nginx, from one run.

  scripts/bench/compare.py --p8 $PWD/.build/release/p8 [KNOB=VALUE ...] [--skip-at-size] [--out DIR]
  scripts/bench/compare.py --report-only DIR

Runs ../shared/bench/side_by_side.sh into DIR (s1 with direct, nginx, Pushpin and P-8 interleaved, then
s2-s4 for P-8, Nchan and Pushpin with its rate limit off), then scripts/bench/at_size.py, and prints one
Markdown table: figure | P-8 | reference | ratio (P-8 / reference) | target | met/missed. Every ratio pairs
figures measured in the same run (the results in DIR). --report-only DIR prints the table again from DIR.

A benchmark: use a release build. nginx is needed (it is the test backend); without pushpin or wrk, s1 and
Pushpin's figures are skipped and the rest runs through run_all.sh; rows whose reference is not installed
say so. KNOB=VALUE sets the harness's sizes (see ../shared/bench/README.md), e.g. for a smoke test:
  HELD_NS=200 FANOUT_NS=200 FANOUT_ROUNDS=2 PUB_ITEMS=1000 PUB_CHANNELS=50 S1_DURATION=2 RUNS=1
  AT_SIZE_CHANNELS=100 AT_SIZE_PER_CHANNEL=10 AT_SIZE_MISSED=1000 AT_SIZE_PROBE=2000
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BENCH = os.environ.get("BENCH_DIR") or os.path.normpath(os.path.join(ROOT, "..", "shared", "bench"))
NCHAN_MODULE = os.environ.get("NCHAN_MODULE", "/usr/lib/nginx/modules/ngx_nchan_module.so")

# Harness knobs passed through (environment or KEY=VALUE arguments); AT_SIZE_* become at_size.py options.
KNOBS = ["RUNS", "S1_CONNS", "S1_DURATION", "HELD_NS", "FANOUT_NS", "FANOUT_ROUNDS", "PUB_CHANNELS",
         "PUB_ITEMS", "PUB_BATCHES", "WINDOW", "SCEN", "P8_LOG_LEVEL"]
AT_SIZE = {"AT_SIZE_CHANNELS": "--channels", "AT_SIZE_PER_CHANNEL": "--per-channel",
           "AT_SIZE_MISSED": "--missed", "AT_SIZE_PROBE": "--probe"}
# The s2 sizes (19,500 is as many as the 20,000-descriptor limit leaves room for).
DEFAULTS = {"HELD_NS": "1000,10000,19500"}


def installed():
    have = {name: shutil.which(name) is not None for name in ("nginx", "pushpin", "wrk")}
    have["nchan"] = have["nginx"] and os.path.exists(NCHAN_MODULE)
    return have


def run_logged(cmd, log, env):
    with open(log, "w") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode


def run_all(target, out, env, scenarios):
    """run_all.sh TARGET; its result file (named on its last stderr line) is copied to OUT/TARGET.jsonl."""
    log = os.path.join(out, target + ".log")
    run_logged([os.path.join(BENCH, "run_all.sh"), target], log,
               dict(env, FANOUT_CLIENT="c", SCENARIOS=scenarios))
    found = re.findall(r"^results: (\S+)$", open(log).read(), re.M)
    if found:
        shutil.copy(os.path.join(BENCH, found[-1]), os.path.join(out, target + ".jsonl"))


def measure(a, knobs, have):
    out = a.out
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, **knobs, P8_BIN=a.p8)
    version = subprocess.run([a.p8, "--version"], capture_output=True, text=True).stdout.strip() or \
        "built " + time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(a.p8)))
    with open(os.path.join(out, "settings.json"), "w") as f:
        json.dump({"p8": a.p8, "p8_version": version, "knobs": knobs, "installed": have,
                   "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, f)
    if have["pushpin"] and have["wrk"]:
        print("running side_by_side.sh (log: %s/side_by_side.log)" % out, file=sys.stderr)
        run_logged([os.path.join(BENCH, "side_by_side.sh"), out], os.path.join(out, "side_by_side.log"), env)
    else:  # side_by_side.sh needs both; the same scenarios without them, target by target
        print("pushpin or wrk not installed: running run_all.sh per target", file=sys.stderr)
        scen = knobs.get("SCEN", "s2 s3 s4")
        run_all("p8", out, env, ("s1 " if have["wrk"] else "") + scen)
        if have["nchan"]:
            run_all("nchan", out, env, scen)
    if not a.skip_at_size:
        print("running at_size.py", file=sys.stderr)
        cmd = [sys.executable, os.path.join(HERE, "at_size.py"), "--p8", a.p8]
        for knob, option in AT_SIZE.items():
            if knob in knobs:
                cmd += [option, knobs[knob]]
        with open(os.path.join(out, "at_size.jsonl"), "w") as f, \
                open(os.path.join(out, "at_size.err"), "w") as err:
            subprocess.run(cmd, stdout=f, stderr=err)


# ---- report ----

def load(out):
    """{file stem: [result lines]}: p8, nchan, pushpin, s1, at_size."""
    results = {}
    for name in sorted(os.listdir(out)):
        if name.endswith(".jsonl"):
            with open(os.path.join(out, name)) as f:
                results[name[:-6]] = [json.loads(l) for l in f if l.startswith("{")]
    return results


def lines(results, stem, scenario):
    return [d for d in results.get(stem, []) if d.get("scenario") == scenario and "error" not in d]


def fmt(x):
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return "{:,.0f}".format(x)
    return "%.3g" % x


def check(target, value, ratio):
    """target: (on, op, limit), on = "value" or "ratio". Returns (text, met/missed/-)."""
    if not target:
        return "-", "-"
    on, op, limit = target
    text = ("≥" if op == ">=" else "≤") + fmt(limit) + ("x" if on == "ratio" else "")
    x = ratio if on == "ratio" else value
    if x is None:
        return text, "no result"
    return text, "met" if (x >= limit if op == ">=" else x <= limit) else "missed"


def report(out):
    settings = json.load(open(os.path.join(out, "settings.json")))
    have = settings["installed"]
    res = load(out)
    rows = []

    def row(figure, p8, ref=None, ref_name=None, target=None):
        # A reference not installed skips the ratio (and a target on it); a target on P-8's own value still holds.
        absent = ref_name in have and not have[ref_name]
        ratio = p8 / ref if p8 is not None and ref and not absent else None
        text, status = check(target, p8, ratio)
        if absent and (not target or target[0] == "ratio"):
            status = "skipped"
        ref_text = "(%s not installed)" % ref_name if absent else fmt(ref) + (" (%s)" % ref_name if ref_name else "")
        rows.append((figure, fmt(p8), ref_text, "-" if ratio is None else "%.2fx" % ratio, text, status))

    # s1: P-8 against nginx at each connection count, from the same interleaved wrk runs.
    s1 = {}
    for d in lines(res, "s1", "s1_proxy_throughput") + lines(res, "p8", "s1_proxy_throughput"):
        for r in d["results"]:
            s1[(r["target"], r["conns"])] = r
    conns = sorted({c for _, c in s1})
    if not have["wrk"]:
        rows.append(("s1 plain proxying", None, "-", "-", "-", "skipped: wrk not installed"))
    for c in conns:
        p8, ngx = s1.get(("p8", c), {}), s1.get(("nginx", c), {})
        row("s1 plain proxying req/s, %d conns" % c, p8.get("rps"), ngx.get("rps"), "nginx", ("ratio", ">=", 0.8))
    for c in conns:
        p8, ngx = s1.get(("p8", c), {}), s1.get(("nginx", c), {})
        row("s1 proxy CPU µs per request, %d conns" % c, p8.get("proxy_cpu_us_per_req"),
            ngx.get("proxy_cpu_us_per_req"), "nginx", ("value", "<=", 20))

    # s2: one s2_held line per target, one result per N (increasing).
    def s2(stem):
        found = lines(res, stem, "s2_held")
        return {r["n"]: r for r in found[-1]["results"]} if found else {}

    s2p, s2n, s2pp = s2("p8"), s2("nchan"), s2("pushpin")
    if s2p:
        top = max(s2p)
        for key, what in (("t_held_s", "time to hold %s long-polls on as many channels (s)"),
                          ("t_release_s", "time to release %s held long-polls, 1 publish per channel (s)")):
            for ref, name in ((s2n, "nchan"), (s2pp, "pushpin")):
                # "each no slower than Nchan"; Pushpin is shown for comparison only.
                row("s2 " + what % fmt(top), s2p[top].get(key),
                    ref.get(top, {}).get(key), name, ("ratio", "<=", 1) if name == "nchan" else None)
        cpu = lambda r: r["proxy_cpu_s"] / r["n"] * 1e3  # ms per hold, over holding and releasing
        for n in sorted(s2p):
            row("s2 proxy CPU per hold at %s held (ms)" % fmt(n), cpu(s2p[n]),
                cpu(s2n[n]) if n in s2n else None, "nchan")
        def flat(by_n):  # largest over smallest CPU per hold across the sizes; 1.0 is perfectly flat
            per_hold = [cpu(r) for r in by_n.values()]
            return max(per_hold) / min(per_hold) if len(per_hold) > 1 and min(per_hold) > 0 else None

        row("s2 CPU per hold flatness (largest / smallest)", flat(s2p), flat(s2n), "nchan", ("value", "<=", 1.2))
        row("s2 memory per held long-poll at %s (KB)" % fmt(top), s2p[top].get("per_conn_kb"),
            s2n.get(top, {}).get("per_conn_kb"), "nchan", ("value", "<=", 10))
    else:
        rows.append(("s2", "-", "-", "-", "-", "no result"))

    # s3: one line per (mode, N); side_by_side.sh measures with the compiled client (the last line wins).
    def s3(stem):
        return {(d["mode"], d["n"]): d["median"] for d in lines(res, stem, "s3_fanout")}

    s3p, s3n = s3("p8"), s3("nchan")
    for mode, n in sorted(s3p, key=lambda k: (k[0] != "stream", k[1])):
        what = "stream subscribers" if mode == "stream" else "long-polls"
        ref = s3n.get((mode, n), {})
        row("s3 p99, one publish to %s %s (ms)" % (fmt(n), what), s3p[(mode, n)]["p99_ms"], ref.get("p99_ms"), "nchan",
            ("ratio", "<=", 1))
        row("s3 publish acknowledged after, %s %s (ms)" % (fmt(n), what), s3p[(mode, n)]["publish_ack_ms"],
            ref.get("publish_ack_ms"), "nchan")
    if not s3p:
        rows.append(("s3", "-", "-", "-", "-", "no result"))

    # s4: delivered items/s, by (publish mode, items per request).
    def s4(stem):
        found = lines(res, stem, "s4_publish")
        return {(r["publish"], r["batch"]): r.get("delivered_per_s") for r in found[-1]["results"]} if found else {}

    s4p, s4n, s4pp = s4("p8"), s4("nchan"), s4("pushpin")
    if s4p:
        row("s4 HTTP publish, 1 item/request (items/s delivered)", s4p.get(("grip-http", 1)),
            s4n.get(("nchan", 1)), "nchan", ("ratio", ">=", 1))
        row("s4 HTTP publish, 100 items/request (items/s delivered)", s4p.get(("grip-http", 100)),
            s4pp.get(("grip-http", 100)), "pushpin", ("ratio", ">=", 2))
        if ("grip-zmq", 1) in s4p:
            row("s4 ZeroMQ publish (items/s delivered)", s4p[("grip-zmq", 1)], s4pp.get(("grip-zmq", 1)), "pushpin")
    else:
        rows.append(("s4", "-", "-", "-", "-", "no result"))

    # at size: P-8 against itself (empty database).
    at = lines(res, "at_size", "at_size")
    if at:
        d = at[-1]
        row("at size: resume of %s missed items (ms)" % fmt(d["resume_missed"]), d["resume_ms"],
            target=("value", "<=", 50))
        row("at size: restart after SIGTERM, serves after (s)", d["restart_sigterm_served_s"],
            target=("value", "<=", 1))
        row("at size: restart after kill -9, serves after (s)", d["restart_kill9_served_s"],
            target=("value", "<=", 1))
        row("at size: publish items/s, %s items in DB vs empty" % fmt(d["items"]),
            d["publish_items_per_s_large"], d["publish_items_per_s_empty"], "empty DB", target=("ratio", ">=", 0.9))
    elif os.path.exists(os.path.join(out, "at_size.jsonl")):
        rows.append(("at size", "-", "-", "-", "-", "no result (see at_size.err)"))
    else:
        rows.append(("at size", "-", "-", "-", "-", "skipped (--skip-at-size)"))

    print("P-8 %s (%s), run %s; knobs: %s" % (settings["p8_version"] or "?", settings["p8"], settings["time"],
                                              " ".join("%s=%s" % kv for kv in settings["knobs"].items()) or "-"))
    print("ratio = P-8 / reference, both from this run (%s)\n" % out)
    print("| figure | P-8 | reference | ratio | target | met/missed |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join("-" if x is None else str(x) for x in r) + " |")
    missing = [name for name in ("nchan", "pushpin", "wrk") if not have.get(name)]
    if missing:
        print("\nnot installed (their rows skipped): " + ", ".join(missing))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p8", help="absolute path of the p8 executable (a release build)")
    ap.add_argument("--out", help="results directory (default .build/bench/compare-DATE)")
    ap.add_argument("--skip-at-size", action="store_true", help="do not run at_size.py")
    ap.add_argument("--report-only", metavar="DIR", help="print the table from an earlier run's DIR, run nothing")
    ap.add_argument("knobs", nargs="*", metavar="KNOB=VALUE", help=", ".join(KNOBS + list(AT_SIZE)))
    a = ap.parse_args()
    if a.report_only:
        return report(os.path.abspath(a.report_only))
    if not a.p8 or not os.path.isabs(a.p8) or not os.access(a.p8, os.X_OK):
        ap.error("--p8 must name the p8 executable by an absolute path")
    knobs = dict(DEFAULTS)
    knobs.update({k: os.environ[k] for k in KNOBS + list(AT_SIZE) if k in os.environ})
    for kv in a.knobs:
        k, _, v = kv.partition("=")
        if k not in KNOBS and k not in AT_SIZE or not v:
            ap.error("unknown knob %r (known: %s)" % (kv, ", ".join(KNOBS + list(AT_SIZE))))
        knobs[k] = v
    have = installed()
    if not have["nginx"]:
        sys.exit("nginx is not installed: it is the harness's test backend (run %s/setup.sh)" % BENCH)
    a.out = os.path.abspath(a.out or os.path.join(ROOT, ".build", "bench", "compare-" + time.strftime("%Y%m%d-%H%M%S")))
    measure(a, knobs, have)
    report(a.out)


if __name__ == "__main__":
    main()
