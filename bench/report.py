"""Turns the measurements bench/run.sh collected into the Markdown report, with each target of
the harness checked against the figures of the same run."""

import argparse
import datetime
import platform
import subprocess


def read_results(path):
    results = {}
    with open(path) as f:
        for line in f:
            name, _, fields = line.rstrip("\n").partition("\t")
            values = {}
            for pair in fields.split():
                key, _, value = pair.partition("=")
                try:
                    values[key] = float(value)
                except ValueError:
                    values[key] = value
            results[name] = values
    return results


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def command_output(*command):
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_us_per_request(r):
    if not r.get("requests"):
        return float("nan")
    return r["cpu_ticks"] / r["clk_tck"] / r["requests"] * 1e6


def peer_version():
    try:
        import json

        with open("bench/peer/node_modules/oidc-provider/package.json") as f:
            return json.load(f)["version"]
    except OSError:
        return "unknown"


def wrk_version():
    # wrk prints its version on stderr and exits 1.
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    first = (done.stdout + done.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "wrk"


def verdict(ok):
    return "met" if ok else "**not met**"


def per_thousand(count, requests):
    return count / requests * 1000 if requests else float("nan")


def balancer_section(r, args, p):
    """The load-balanced deployment: each row against one instance behind HAProxy and against
    one instance called directly, both measured in the same run."""
    direct, one = r.get("balancer/direct"), r.get("balancer/lb1")
    if not direct or not one:
        return
    p("**Several instances behind HAProxy** (ES256, PostgreSQL and Redis shared, HAProxy round "
      "robin with `/readyz` health checks every second; every instance and HAProxy (one thread) "
      "share core 0, so on this machine more instances cannot scale: the rows show what each "
      "added instance and the balancer cost. CPU per token is the processes' own time from "
      "`/proc`; each instance's is its CPU time over the tokens it served (a third of them with "
      "three). PostgreSQL round trips are the Sync and Query messages the instances sent, "
      "counted by a relay in front of PostgreSQL (`bench/pg_relay.py`), beside the bench "
      "database's transactions from `pg_stat_database` (flushed by each backend up to seconds "
      "late); Redis commands are the delta of `total_commands_processed` (commands a script "
      "runs count too, the harness's own `INFO` not) and scripts the `EVALSHA` calls, both "
      "server-wide. Each is per 1,000 tokens under load, beside its rate over an idle window of "
      "the same length before the load (change-log polls and health checks go on without "
      "tokens: \"beyond idle\" is what the load added):")
    p("")
    p("| path | tokens/s | vs 1 instance behind HAProxy | vs 1 instance direct | p50 | p99 | "
      "CPU per token, all instances | vs 1 instance direct | CPU per token served, each "
      "instance | HAProxy CPU per token |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    rows = [("1 instance, called directly", direct)]
    rows += [(f"{n} instance{'s' if n > 1 else ''} behind HAProxy", r[f"balancer/lb{n}"])
             for n in (1, 2, 3) if f"balancer/lb{n}" in r]
    direct_cpu = cpu_us_per_request(direct)
    for name, row in rows:
        req = row.get("requests") or float("nan")
        served = req / int(row["instances"])
        each = ", ".join(f"{float(t) / row['clk_tck'] / served * 1e6:.0f}"
                         for t in str(row["instance_ticks"]).split(","))
        haproxy = ("" if row is direct else
                   f"{row['haproxy_ticks'] / row['clk_tck'] / req * 1e6:.0f} µs")
        failed = f" ({int(row['failed'])} failed)" if row.get("failed") else ""
        cpu = cpu_us_per_request(row)
        p(f"| {name} | {row['rps']:,.0f}{failed} | {row['rps'] / one['rps']:.2f} | "
          f"{row['rps'] / direct['rps']:.2f} | {row['p50_ms']:.2f} ms | {row['p99_ms']:.2f} ms | "
          f"{cpu:.0f} µs | {cpu / direct_cpu:.2f} | {each} µs | {haproxy} |")
    p("")
    # The idle window is as long as the measured run: what the load added is the difference.
    p("| path | PostgreSQL round trips per 1,000 tokens | beyond idle | idle, per s | PostgreSQL "
      "transactions per 1,000 tokens | idle, per s | Redis commands per 1,000 tokens | vs 1 "
      "instance direct | of them scripts | idle commands, per s |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    seconds = args.seconds
    direct_redis = per_thousand(direct["redis_commands"], direct.get("requests"))
    for name, row in rows:
        req = row.get("requests")
        redis = per_thousand(row["redis_commands"], req)
        beyond = per_thousand(row["pg_round_trips"] - row["idle_pg_round_trips"], req)
        p(f"| {name} | {per_thousand(row['pg_round_trips'], req):.1f} | {beyond:.1f} | "
          f"{row['idle_pg_round_trips'] / seconds:.1f} | {per_thousand(row['pg_xacts'], req):.1f} | "
          f"{row['idle_pg_xacts'] / seconds:.1f} | {redis:,.0f} | {redis / direct_redis:.2f} | "
          f"{per_thousand(row['redis_scripts'], req):,.0f} | "
          f"{row['idle_redis_commands'] / seconds:.1f} |")
    p("")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--seconds", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--credentials", type=int, required=True)
    args = parser.parse_args()
    r = read_results(args.results)
    out = []
    p = out.append
    today = datetime.date.today().isoformat()
    p(f"Measured {today} on {cpu_model()} ({command_output('nproc', '--all')} cores), "
      f"tokenmint {command_output('git', 'rev-parse', '--short', 'HEAD')}, "
      f"node-oidc-provider {peer_version()} on Node {command_output('node', '--version')}, "
      f"{wrk_version()}. "
      f"Command: `bench/run.sh` (server on core 0, load on core 1, {args.connections} keep-alive "
      f"connections, {args.seconds} s per run after a warm-up).")
    p("")
    # A run of some sections (BENCH_ONLY) reports those alone.
    token_run = any(f"tokenmint/{alg}" in r for alg in ("RS256", "ES256", "EdDSA"))
    if token_run:
        p("**Token endpoint** (form-encoded `client_secret_post`, one JWT per request):")
        p("")
        p("| algorithm | server | requests/s | p50 | p99 | CPU per token | tokenmint / peer | of the signing limit |")
        p("|---|---|---|---|---|---|---|---|")
    targets = []
    for alg in ("RS256", "ES256", "EdDSA"):
        tm, peer = r.get(f"tokenmint/{alg}"), r.get(f"peer/{alg}")
        limit = r.get(f"signing/{alg}", {}).get("signatures_per_s")
        if not tm or not peer:
            continue
        ratio = tm["rps"] / peer["rps"] if peer["rps"] else float("nan")
        share = tm["rps"] / limit if limit else float("nan")
        for name, row in (("tokenmint", tm), ("node-oidc-provider", peer)):
            failed = f" ({int(row['failed'])} failed)" if row.get("failed") else ""
            vs_peer = f"{ratio:.1f}×" if name == "tokenmint" else "1"
            of_limit = f"{row['rps'] / limit:.0%}" if limit else ""
            p(f"| {alg} | {name} | {row['rps']:,.0f}{failed} | {row['p50_ms']:.2f} ms | "
              f"{row['p99_ms']:.2f} ms | {cpu_us_per_request(row):.0f} µs | {vs_peer} | "
              f"{of_limit} |")
        if alg == "RS256":
            targets.append((f"RS256 at ≥ 90 % of the signing limit ({limit:,.0f}/s)",
                            f"{share:.0%}", share >= 0.9))
        else:
            targets.append((f"{alg} ≥ 8× node-oidc-provider", f"{ratio:.1f}×", ratio >= 8))
            targets.append((f"{alg} p99 < 2 ms at {args.connections} connections",
                            f"{tm['p99_ms']:.2f} ms", tm["p99_ms"] < 2))
    limits = [f"{alg} {r[f'signing/{alg}']['signatures_per_s']:,.0f}/s"
              for alg in ("RS256", "ES256", "EdDSA") if f"signing/{alg}" in r]
    if token_run:
        p("")
    if limits:
        p(f"Signing limit on one core (aws-lc-rs through tokenmint's own signing code): {', '.join(limits)}.")
        p("")

    direct, proxy = r.get("gateway/direct"), r.get("gateway/proxy")
    hot, cold = r.get("gateway/hot"), r.get("gateway/cold")
    if direct and proxy and hot and cold:
        p("**Gateway** (GET with a bearer token; the upstream and the load generator share core 1 "
          "in every row, the proxy or gateway has core 0; the bare proxy is hyper forwarding "
          "requests with no checks at all, the floor under any gateway on the same HTTP stack; the 1-connection runs put the load "
          "generator, the proxy or gateway and the upstream on one core, so that they show "
          "processing time rather than the ~150 µs this virtual machine takes to wake an idle "
          "core):")
        p("")
        p(f"| path | requests/s ({args.connections} conn.) | vs direct | vs bare proxy | p50 | p99 | "
          "CPU per request | p50 at 1 conn. | added p50 at 1 conn. |")
        p("|---|---|---|---|---|---|---|---|---|")
        d1 = r.get("gateway/direct/c1", {})
        rows = (("upstream called directly", direct, None),
                ("bare hyper proxy, no checks", proxy, r.get("gateway/proxy/c1")),
                ("gateway, hot verified-token cache", hot, r.get("gateway/hot/c1")),
                ("gateway, cache off (signature checked every time)", cold, None))
        for name, row, c1 in rows:
            vs_direct = row["rps"] / direct["rps"]
            vs_proxy = row["rps"] / proxy["rps"]
            cpu = "" if row is direct else f"{cpu_us_per_request(row):.0f} µs"
            if row is direct:
                p50_c1, added = (f"{d1['p50_ms'] * 1000:.0f} µs" if d1 else ""), ""
            elif c1 and d1:
                p50_c1 = f"{c1['p50_ms'] * 1000:.0f} µs"
                added = f"{(c1['p50_ms'] - d1['p50_ms']) * 1000:+.0f} µs"
            else:
                p50_c1, added = "", ""
            p(f"| {name} | {row['rps']:,.0f} | {vs_direct:.2f} | {vs_proxy:.2f} | "
              f"{row['p50_ms']:.3f} ms | {row['p99_ms']:.3f} ms | {cpu} | {p50_c1} | {added} |")
        p("")
        nginx, haproxy = r.get("gateway/nginx"), r.get("gateway/haproxy")
        haproxy_jwt = r.get("gateway/haproxy-jwt")
        if nginx and haproxy and haproxy_jwt:
            p("**Gateway against the proxies an API provider already runs** (the same run, each "
              "alone on core 0 with one worker or thread; HAProxy's `jwt_verify` checks the "
              "ES256 signature only, the gateway also `typ`, `iss`, `aud`, expiry, revocations "
              "and the route's scope):")
            p("")
            p("| proxy | requests/s | CPU per request | gateway (hot cache) / it | gateway (cache off) / it |")
            p("|---|---|---|---|---|")
            for name, row in (("nginx, plain proxy", nginx), ("HAProxy, plain proxy", haproxy),
                              ("HAProxy, `jwt_verify` ES256", haproxy_jwt)):
                p(f"| {name} | {row['rps']:,.0f} | {cpu_us_per_request(row):.0f} µs | "
                  f"{hot['rps'] / row['rps']:.2f} | {cold['rps'] / row['rps']:.2f} |")
            p("")
            targets.append(("gateway (hot cache) ≥ nginx plain proxy",
                            f"{hot['rps'] / nginx['rps']:.2f}×", hot["rps"] >= nginx["rps"]))
            targets.append(("gateway (cache off) > HAProxy jwt_verify",
                            f"{cold['rps'] / haproxy_jwt['rps']:.2f}×",
                            cold["rps"] > haproxy_jwt["rps"]))
        share = hot["rps"] / direct["rps"]
        targets.append(("gateway ≥ 80 % of direct throughput (hot cache)", f"{share:.0%} "
                        f"(the bare proxy: {proxy['rps'] / direct['rps']:.0%})", share >= 0.8))
        hot1 = r.get("gateway/hot/c1")
        if hot1 and d1:
            added = (hot1["p50_ms"] - d1["p50_ms"]) * 1000
            targets.append(("gateway adds < 100 µs at p50 (hot cache, 1 connection)",
                            f"{added:+.0f} µs", added < 100))

    sdk = r.get("sdk")
    if sdk:
        p(f"**SDK**: {int(sdk['callers']):,} concurrent callers of one cold client made "
          f"{int(sdk['token_requests'])} token request(s); the first caller had its token after "
          f"{sdk['first_ms']:.1f} ms, half of them after {sdk['p50_ms']:.1f} ms, all after "
          f"{sdk['max_ms']:.1f} ms. A cached token then costs {sdk['cached_call_ns']:.0f} ns per call.")
        p("")

    idle, stored, used = r.get("memory/idle"), r.get("memory/stored"), r.get("memory/used")
    created, usage = r.get("memory/create"), r.get("memory/use")
    if idle and stored and used:
        p("**Memory and start-up** (ES256, SQLite):")
        p("")
        p("| server | RSS | start-up (median of 5) |")
        p("|---|---|---|")
        p(f"| idle, empty database | {idle['rss_mb']:.1f} MB | {r['startup/empty']['startup_ms']:.0f} ms |")
        p(f"| idle, {args.credentials:,} credentials stored | {stored['rss_mb']:.1f} MB | "
          f"{r['startup/stored']['startup_ms']:.0f} ms |")
        p(f"| after each of the {args.credentials:,} credentials obtained a token (all cached) | "
          f"{used['rss_mb']:.1f} MB | |")
        p("")
        if created and usage:
            p(f"The credentials were created through the admin API at {created['per_s']:,.0f}/s "
              f"and then each obtained one token at {usage['per_s']:,.0f}/s (every one a cache miss).")
            p("")
        targets.append(("idle RSS < 30 MB", f"{idle['rss_mb']:.1f} MB", idle["rss_mb"] < 30))
        worst = max(stored["rss_mb"], used["rss_mb"])
        targets.append((f"RSS < 50 MB with {args.credentials:,} credentials", f"{worst:.1f} MB",
                        worst < 50))

    balancer_section(r, args, p)

    if targets:
        p("**Targets**:")
        p("")
        p("| target | this run | |")
        p("|---|---|---|")
        for name, value, ok in targets:
            p(f"| {name} | {value} | {verdict(ok)} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
