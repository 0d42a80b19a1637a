"""`supagate workflows`: the GitHub workflows generated from the stack settings, written
or checked against .github/workflows/, and every file there audited (no secret for a
pull request, actions pinned by SHA, prod deploys only from main)."""

from __future__ import annotations

from pathlib import Path

from supagate.cli.common import EXIT_FAILED, EXIT_OK, err


def register(sub) -> None:
    wfl = sub.add_parser("workflows", help="generate the GitHub workflows from the stack settings (or check them)",
                         description="Without --write, exit 1 when .github/workflows/ differs from what the stack "
                                     "settings generate, or when any workflow there gives a secret to a job a pull "
                                     "request can start, uses an action not pinned by commit SHA (local actions "
                                     "included), uploads anything but encrypted snapshots from an environment, or "
                                     "deploys prod without checking the commit is on main (a required check). "
                                     "Example: supagate workflows --write")
    wfl.add_argument("--write", action="store_true", help="write .github/workflows/ (default: only check)")
    wfl.set_defaults(func=run)


def run(args) -> int:
    from supagate.config.loading import settings_from_stack_file
    from supagate.delivery.environments import PRODUCTION, held_secrets, kept_to_main
    from supagate.delivery.workflow_audit import audit
    from supagate.delivery.workflows import rendered, write

    prod = settings_from_stack_file("prod", Path("Pulumi.prod.yaml"))
    staging = settings_from_stack_file("staging", Path("Pulumi.staging.yaml"))
    files = rendered(staging, prod)
    target = Path(".github") / "workflows"
    if args.write:
        changed = write(target, files)
        err(f"wrote {', '.join(changed)}" if changed else "workflows are up to date")
    stale = [n for n, text in files.items() if not (target / n).exists() or (target / n).read_text() != text]
    if stale:
        err(f"{', '.join(stale)} in {target} differ from what the stack settings generate\n"
            "Run `uv run supagate workflows --write` and commit the result.")
    present = {p.name: p.read_text() for p in sorted(target.glob("*.y*ml"))}
    problems = audit(present, held_secrets(set(prod.alert_secrets)), PRODUCTION, kept_to_main(staging, prod),
                     read=_repository_file)
    for problem in problems:
        err(f"{target}/{problem}")
    if stale or problems:
        return EXIT_FAILED
    if not args.write:
        err(f"{len(files)} workflows in {target} match the stack settings; {len(present)} audited")
    return EXIT_OK


def _repository_file(path: str) -> str | None:
    """A file of the repository (a local action's action.yml), read from the working directory."""
    file = Path(path)
    return file.read_text() if not file.is_absolute() and ".." not in file.parts and file.is_file() else None
