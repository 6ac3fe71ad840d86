#!/usr/bin/env python3
"""The measuring half of s1_https.sh: wrk against each HTTPS target, interleaved run by run, with each proxy's
CPU time (from /proc, through the harness's benchlib) per request; prints one JSON line per (target,
connections) and P-8's ratios to nginx."""
import argparse
import json
import os
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench-dir", required=True)
    ap.add_argument("--target", action="append", required=True, help="NAME=URL")
    ap.add_argument("--pids", action="append", default=[], help="NAME=PID")
    ap.add_argument("--conns", default="64")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, a.bench_dir)
    from benchlib import ProcTree, median  # noqa: E402

    lua = os.path.join(a.bench_dir, "wrk_json.lua")

    def wrk(url, conns, duration):
        cmd = ["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--timeout", "5s", "-s", lua, url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
        result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
        result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
        return result

    targets = [t.split("=", 1) for t in a.target]
    trees = {name: ProcTree([pid]) for name, pid in (p.split("=", 1) for p in a.pids)}
    for _, url in targets:
        wrk(url, 16, 1)  # warm-up: handshakes, caches
    samples = {}
    for _ in range(a.runs):
        for conns in [int(c) for c in a.conns.split(",")]:
            for name, url in targets:
                cpu = trees[name].cpu_s()
                result = wrk(url, conns, a.duration)
                result["cpu_us_per_request"] = (trees[name].cpu_s() - cpu) / max(result["requests"], 1) * 1e6
                samples.setdefault((name, conns), []).append(result)
    rows = {}
    for (name, conns), runs in sorted(samples.items(), key=lambda item: (item[0][1], item[0][0])):
        row = {
            "target": name,
            "conns": conns,
            "rps": round(median([r["rps"] for r in runs])),
            "rps_runs": [round(r["rps"]) for r in runs],
            "lat_p50_ms": round(median([r["lat_p50_us"] for r in runs]) / 1e3, 2),
            "lat_p99_ms": round(median([r["lat_p99_us"] for r in runs]) / 1e3, 2),
            "cpu_us_per_request": round(median([r["cpu_us_per_request"] for r in runs]), 1),
            "errors": sum(r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"] for r in runs),
            "non_2xx": sum(r.get("non2xx", 0) for r in runs),
        }
        rows[(name, conns)] = row
        print(json.dumps(row))
    for (name, conns), row in rows.items():
        nginx = rows.get(("nginx", conns))
        if name == "p8" and nginx:
            print(json.dumps({
                "conns": conns,
                "p8_rps_over_nginx": round(row["rps"] / nginx["rps"], 3),
                "p8_cpu_over_nginx": round(row["cpu_us_per_request"] / nginx["cpu_us_per_request"], 3),
            }))


if __name__ == "__main__":
    main()
