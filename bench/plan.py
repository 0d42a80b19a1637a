"""Benchmark: `supagate plan --stack prod` (the program under the mock runtime and the real
policy pack, started side by side) next to its two halves run alone in the same run:
  - the program alone (`python -m supagate.offline.program`, the same request on stdin),
  - the policy pack alone (started, configured and stopped, no resources).
`pulumi preview`, the real peer, needs the Pulumi CLI and cannot run here; the halves
show what the side-by-side start saves. Target: plan <= 3 s with the pack's environment
built (the first plan of a checkout builds it).

    uv run python bench/plan.py [--repeat 5] [--stack prod]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stats import Samples, fresh_bytecode, target, timed  # noqa: E402

from supagate.offline.plan import program_request  # noqa: E402
from supagate.pack.host import PolicyPack, load_pack_config, pack_python  # noqa: E402


def program_alone(request: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "supagate.offline.program"], input=json.dumps(request),
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0 or json.loads(done.stdout)["error"]:
        raise SystemExit(f"the program failed: {done.stderr[-2000:] or done.stdout[-2000:]}")
    return time.perf_counter() - started


def pack_alone(stack: str, python: str) -> float:
    config = ROOT / "policies" / "config" / f"{stack}.json"
    started = time.perf_counter()
    with PolicyPack(ROOT / "policies", python=python, stack=stack) as pack:
        pack.configure(load_pack_config(config), str(config))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stack", default="prod")
    args = parser.parse_args()
    fresh_bytecode(ROOT)
    python = pack_python(ROOT / "policies")  # builds the pack's environment once, outside the timings
    _, request, _ = program_request(ROOT, args.stack, assume_secrets=True)
    command = [str(ROOT / ".venv" / "bin" / "supagate"), "-q", "plan", "--stack", args.stack, "--assume-secrets",
               "--format", "json"]
    whole, program, pack = Samples(), Samples(), Samples()
    for _ in range(args.repeat):  # interleaved
        elapsed, done = timed(command, cwd=ROOT)
        if done.returncode not in (0, 1) or not done.stdout.startswith("{"):
            raise SystemExit(f"supagate plan failed: {done.stderr[-2000:]}")
        whole.append(elapsed)
        program.append(program_alone(request))
        pack.append(pack_alone(args.stack, python))
    resources = len(json.loads(done.stdout)["resources"])
    slower = max(program.median, pack.median)
    print(f"supagate plan --stack {args.stack} ({resources} resources)  {whole}")
    print(f"  the program alone                 {program}")
    print(f"  the policy pack alone             {pack}")
    print(f"  plan / the slower half            {whole.median / slower:.2f}x   "
          f"plan / both halves one after the other {whole.median / (program.median + pack.median):.2f}x")
    ok = target("plan seconds", whole.median, 3, " s")[1]
    print(f"\n{int(ok)}/1 targets met")


if __name__ == "__main__":
    main()
