#!/usr/bin/env python3
"""Times the project's updates and their PyTorch versions interleaved in one run, and prints
medians and ratios (docs/BENCHMARKS.md, "Update speed against PyTorch").

    ~/.cache/fire-rl/torch-2.11.0/bin/python benchmarks/pytorch/compare.py --repeats 5
    ... compare.py --cases dqn-nature,sac-simba --repeats 3 --bf16

It builds the two Rust benches once (`cargo bench -p dqn -p sac --no-run`, release), then for
each of `--repeats` rounds runs, per case, our bench (`--json`) and every PyTorch variant
(`update.py --json`) one after the other, each in its own process, so that load that comes
and goes on a shared machine falls on both sides alike. Each line of the table is the median
over the rounds; "ratio" is ours / theirs (below 1: ours is faster).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UPDATE_PY = Path(__file__).resolve().parent / "update.py"

# Per case: (our bench crate, our bench arguments, PyTorch variants as update.py arguments).
FP32_VARIANTS = [
    ["--optimizer-variant", "foreach-false"],
    ["--optimizer-variant", "fused"],
]
CASES = {
    "dqn-nature": ("dqn", ["--net", "nature", "--no-act", "--no-phases"], True),
    "dqn-cartpole": ("dqn", ["--net", "cartpole", "--no-act", "--no-phases"], False),
    "sac-simba": ("sac", ["--only", "simba"], False),
    "sac-mlp": ("sac", ["--only", "mlp"], False),
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cases", default="dqn-nature,dqn-cartpole,sac-simba")
    p.add_argument("--threads", type=int, default=2, help="torch threads on both sides")
    p.add_argument("--bf16", action="store_true", help="also time both sides in bf16")
    p.add_argument("--calls", type=int, default=None, help="updates per timing (default each bench's)")
    p.add_argument("--no-build", action="store_true", help="use the bench binaries already built")
    p.add_argument("--before", metavar="DIR", help="also time the benches in DIR (dqn-update, "
                   "sac-update: copies of an earlier build) as 'ours before'")
    p.add_argument("--raw", metavar="FILE", help="write every timing to FILE as JSON")
    return p.parse_args(argv)


def bench_binaries(build):
    """Paths of the `update` bench executables of dqn and sac (built in release)."""
    cmd = ["cargo", "bench", "-p", "dqn", "-p", "sac", "--bench", "update", "--no-run",
           "--message-format=json"]
    if not build:
        cmd.append("--offline")
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    paths = {}
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            if msg["target"]["name"] == "update":
                crate = msg["package_id"].split("#")[0].rsplit("/", 1)[-1]
                paths[crate.split("@")[0]] = msg["executable"]
    missing = {"dqn", "sac"} - paths.keys()
    if missing:
        sys.exit(f"no update bench built for {sorted(missing)}")
    return paths


def run_json(cmd, env):
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


def main(argv):
    args = parse_args(argv)
    bins = bench_binaries(not args.no_build)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    threads = ["--threads", str(args.threads)]
    calls = ["--calls", str(args.calls)] if args.calls else []
    precisions = ["fp32", "bf16"] if args.bf16 else ["fp32"]
    jobs = []  # (label, command)
    for case in args.cases.split(","):
        crate, our_args, convolutional = CASES[case]
        for precision in precisions:
            prec = ["--precision", precision]
            jobs.append(((case, precision, "ours"), [bins[crate], "--json", *our_args, *threads, *calls, *prec]))
            if args.before and precision == "fp32":
                before = str(Path(args.before) / f"{crate}-update")
                jobs.append(((case, precision, "ours before"), [before, "--json", *our_args, *threads, *calls]))
            variants = [list(v) for v in FP32_VARIANTS]
            if convolutional:
                variants.append(["--optimizer-variant", "fused", "--channels-last"])
            for v in variants:
                if precision == "bf16":
                    v = v + ["--bf16"]
                label = " ".join(a for a in v if not a.startswith("--optimizer"))
                jobs.append(((case, precision, "pytorch " + label),
                             [sys.executable, str(UPDATE_PY), case, "--json", *v, *threads, *calls]))
    times = {label: [] for label, _ in jobs}
    for r in range(args.repeats):
        for label, cmd in jobs:
            times[label].append(run_json(cmd, env)["update_ms"])
        print(f"round {r + 1}/{args.repeats} done", file=sys.stderr)

    if args.raw:
        Path(args.raw).write_text(json.dumps({" / ".join(k): v for k, v in times.items()}, indent=1))
    print(f"threads {args.threads}, {args.repeats} interleaved rounds, medians (ms per update)\n")
    print("| case | precision | what | median ms | min ms | range | ours / this (medians) | (mins) |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for case in args.cases.split(","):
        for precision in precisions:
            mine = times[(case, precision, "ours")]
            ours, ours_min = statistics.median(mine), min(mine)
            for label in [l for l in times if l[0] == case and l[1] == precision]:
                t = times[label]
                med = statistics.median(t)
                ratio = ("", "") if label[2] == "ours" else (f"{ours / med:.2f}", f"{ours_min / min(t):.2f}")
                print(f"| {case} | {precision} | {label[2]} | {med:.2f} | {min(t):.2f} | "
                      f"{min(t):.2f}-{max(t):.2f} | {ratio[0]} | {ratio[1]} |")


if __name__ == "__main__":
    main(sys.argv[1:])
