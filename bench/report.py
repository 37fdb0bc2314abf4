"""Turns bench/run's wrk outputs into a table (stdout) and a JSON file in bench/results/."""

import argparse
import datetime
import json
import pathlib
import re

ROWS = [
    ("respond", 'Caddy `respond "hello"`'),
    ("as-cgi", "AssemblyScript CGI guest"),
    ("go-cgi", "Go example, CGI mode"),
    ("go-wcgi", "Go example, WCGI mode"),
    ("go-echo-64k", "Go echo, 64 KiB POST"),
    ("js-http", "JS wasi:http component"),
    ("py-http", "Python wasi:http component"),
    ("rust-http", "Rust wasi:http component"),
    # Run while the optimised tier compiles in the background (niced), as users meet them.
    ("go-cgi-baseline", "Go CGI, baseline tier (Winch)"),
    ("go-wcgi-baseline", "Go WCGI, baseline tier (Winch)"),
]


def to_ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not m:
        raise ValueError(value)
    n, unit = float(m.group(1)), m.group(2)
    return {"us": n / 1000, "ms": n, "s": n * 1000}[unit]


def parse(text: str) -> dict:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: (.*)", text)
    return {
        "rps": rps,
        "requests": requests,
        "p50_ms": to_ms(lat["50"]),
        "p99_ms": to_ms(lat["99"]),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sock.group(1) if sock else "",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--meta", nargs="*", default=[])
    args = ap.parse_args()
    meta = dict(kv.split("=", 1) for kv in args.meta)
    work = pathlib.Path(args.work)
    rows = {key: parse((work / f"wrk-{key}.txt").read_text()) for key, _ in ROWS}
    base = rows["respond"]["rps"]
    # A row run right after a `respond` run of its own is compared with that one; the
    # baseline-tier rows (run during the background compile) with the `respond` row.
    for key, _ in ROWS:
        paired = work / f"wrk-respond-{key}.txt"
        rows[key]["respond_rps"] = parse(paired.read_text())["rps"] if paired.exists() else base
    tick_us = 1e6 / int(meta.get("clk_tck", "100"))

    # CPU per request is Caddy's own CPU time (wrk's is not counted) over the requests of
    # the run: steadier between runs than req/s on a machine wrk shares.
    print(f"\n{'site':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'respond':>9} {'x respond':>10} {'cpu us/req':>11} {'errors':>7}")
    for key, label in ROWS:
        r = rows[key]
        r["ratio"] = round(r["rps"] / r["respond_rps"], 4)
        ticks = int((work / f"cpu-{key}.txt").read_text())
        r["cpu_us_per_request"] = round(ticks * tick_us / max(r["requests"], 1), 1)
        print(f"{label:32} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['respond_rps']:9.0f} {r['ratio']:10.3f} "
              f"{r['cpu_us_per_request']:11.1f} {r['non_2xx']:7d}")
    print("(respond: the req/s of the `respond` run just before the row, which its ratio is against;")
    print(" the baseline-tier rows' is the `respond` row's, and their CPU includes the optimised tier")
    print(" compiling in the background)")
    if meta.get("baseline_runs_mixed", "0") != "0":
        print("(a tier-up happened during the baseline-tier runs: they mix both tiers)")
    print(f"\nGo example first request, empty cache (baseline tier): {float(meta['cold_empty_s']) * 1000:8.1f} ms")
    print(f"Go example optimised tier ready (background compile):  {float(meta['optimized_ready_ms'] or 'nan'):8.1f} ms")
    print(f"Go example first request, restart + disk cache:        {float(meta['cold_cached_s']) * 1000:8.1f} ms")
    mib = {k: int(meta[k]) / 1024 for k in ("rss_before_kb", "peak_rss_kb", "idle_rss_kb")}
    print(f"Caddy RSS before the first request: {mib['rss_before_kb']:.0f} MiB; peak: {mib['peak_rss_kb']:.0f} MiB; "
          f"after modules went idle: {mib['idle_rss_kb']:.0f} MiB")
    print(f"({meta['nproc']} cores, {meta['cpu']}; wrk -t{meta['threads']} -c{meta['connections']} -d{meta['duration']})")

    out = pathlib.Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"{stamp}.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
