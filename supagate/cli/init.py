"""`supagate init`: stack files, pack configs and workflows for an existing Supabase app."""

from __future__ import annotations

from pathlib import Path

from supagate.cli.common import EXIT_OK, UsageError, err


def register(sub) -> None:
    ini = sub.add_parser("init", help="write the stack files, pack configs and workflows for an existing app",
                         description="Reads supabase/config.toml and the functions, writes Pulumi.staging.yaml and "
                                     "Pulumi.prod.yaml (tiers staging and production), policies/config/*.json and "
                                     ".github/workflows/. Example: supagate init --staging-ref abcdefghijklmnopqrst "
                                     "--prod-ref bcdefghijklmnopqrstu --org acme --repository acme/app")
    ini.add_argument("--staging-ref", required=True, help="the staging project's reference (20 letters)")
    ini.add_argument("--prod-ref", required=True, help="the production project's reference (20 letters)")
    ini.add_argument("--org", required=True, help="the Pulumi organization (prod promotes from <org>/supabase-platform/staging)")
    ini.add_argument("--repository", default="", help="owner/name on GitHub, for environments and the ruleset")
    ini.add_argument("--region", default="us-east-1")
    ini.add_argument("--signature-header", action="append", default=[], metavar="SLUG=HEADER",
                     help="the header a function without JWT verifies (repeat per function)")
    ini.add_argument("--reviewer", action="append", default=[], help="who approves a production deploy "
                                                                       "(a user, or org/team; repeat)")
    ini.add_argument("--allowed-cidr", action="append", default=[], help="a network that may reach the database "
                                                                          "directly (repeat)")
    ini.add_argument("--force", action="store_true", help="overwrite files that differ")
    ini.add_argument("--project", default=".", help="the app's root, holding supabase/ (default: .)")
    ini.set_defaults(func=run)


def run(args) -> int:
    from supagate.config.init import InitOptions, _config, _unverified, next_steps, write
    from supagate.config.loading import settings_from_stack_file
    from supagate.delivery.workflows import rendered, write as write_workflows

    headers = {}
    for item in args.signature_header:
        slug, sep, header = item.partition("=")
        if not sep or not slug or not header:
            raise UsageError(f"--signature-header {item!r}: use SLUG=HEADER, e.g. stripe-webhook=stripe-signature")
        headers[slug] = header
    project = Path(args.project)
    options = InitOptions(args.staging_ref, args.prod_ref, args.org, args.repository, args.region, headers,
                          tuple(args.reviewer), tuple(args.allowed_cidr), args.force)
    written, unchanged = write(project, options)
    unverified = _unverified(project, _config(project))
    if all(slug in headers for slug in unverified):  # the stacks load: the workflows can be generated
        workflows = rendered(settings_from_stack_file("staging", project / "Pulumi.staging.yaml"),
                             settings_from_stack_file("prod", project / "Pulumi.prod.yaml"))
        written += [f".github/workflows/{n}" for n in write_workflows(project / ".github" / "workflows", workflows)]
    print(f"wrote {', '.join(written)}" if written else "nothing to write: every file is up to date")
    if unchanged:
        print(f"unchanged: {', '.join(unchanged)}")
    print("next steps:")
    for step in next_steps(options, unverified):
        print(f"  {step}")
    return EXIT_OK
