"""`supagate workflows`: the GitHub workflows generated from the stack settings, written
or checked against .github/workflows/."""

from __future__ import annotations

from pathlib import Path

from supagate.cli.common import EXIT_FAILED, EXIT_OK, err


def register(sub) -> None:
    wfl = sub.add_parser("workflows", help="generate the GitHub workflows from the stack settings (or check them)",
                         description="Without --write, exit 1 when .github/workflows/ differs from what the stack "
                                     "settings generate (a required check). Example: supagate workflows --write")
    wfl.add_argument("--write", action="store_true", help="write .github/workflows/ (default: only check)")
    wfl.set_defaults(func=run)


def run(args) -> int:
    from supagate.config.loading import settings_from_stack_file
    from supagate.delivery.workflows import rendered, write

    files = rendered(settings_from_stack_file("staging", Path("Pulumi.staging.yaml")),
                     settings_from_stack_file("prod", Path("Pulumi.prod.yaml")))
    target = Path(".github") / "workflows"
    if args.write:
        changed = write(target, files)
        err(f"wrote {', '.join(changed)}" if changed else "workflows are up to date")
        return EXIT_OK
    stale = [n for n, text in files.items() if not (target / n).exists() or (target / n).read_text() != text]
    if stale:
        err(f"{', '.join(stale)} in {target} differ from what the stack settings generate\n"
            "Run `uv run supagate workflows --write` and commit the result.")
        return EXIT_FAILED
    err(f"{len(files)} workflows in {target} match the stack settings")
    return EXIT_OK
