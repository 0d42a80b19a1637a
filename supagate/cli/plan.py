"""`supagate plan`: the program evaluated offline, the real policy pack run over it."""

from __future__ import annotations

from pathlib import Path

from supagate.cli.common import EXIT_FAILED, EXIT_OK, emit_json, err, out


def register(sub) -> None:
    pln = sub.add_parser("plan", help="evaluate the program offline and run the policy pack over it",
                         description="The Pulumi program under the SDK's mock runtime with the stack's settings, then "
                                     "the real policy pack over every resource, as `pulumi preview --policy-pack` "
                                     "would, with no Pulumi CLI or credentials. Example: supagate plan --stack prod")
    pln.add_argument("--stack", required=True, help="the stack whose settings and pack config apply")
    pln.add_argument("--stack-file", type=Path, help="use this file instead of Pulumi.<stack>.yaml")
    pln.add_argument("--policy-pack-config", type=Path,
                     help="enforcement levels (default policies/config/<stack>.json)")
    pln.add_argument("--staging-outputs", type=Path,
                     help="staging's outputs (`pulumi stack output --json --stack staging`) for the promotion check")
    pln.add_argument("--assume-secrets", action="store_true",
                     help="plan with stand-ins for the required secrets the stack file does not hold yet "
                          "(without it, plan exits 2 and prints the `pulumi config set --secret` lines)")
    pln.add_argument("--project", default=".", help="project root (default: .)")
    pln.add_argument("--format", choices=("text", "json"), default="text")
    pln.set_defaults(func=run)


def run(args) -> int:
    from supagate.offline.plan import plan, render_text

    result = plan(Path(args.project), args.stack, args.stack_file, args.policy_pack_config,
                  args.staging_outputs, progress=err, assume_secrets=args.assume_secrets)
    if args.format == "json":
        emit_json(result.to_json())
    (err if args.format == "json" else out)(render_text(result))
    return EXIT_FAILED if result.blocked else EXIT_OK
