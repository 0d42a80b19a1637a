"""Post-deploy verification as the last step of `pulumi up`: `supagate verify` runs after
the migrations and the project's functions, so a failed verification fails the deploy."""

from __future__ import annotations

import pulumi
from pulumi_command import local


class Verification(pulumi.ComponentResource):
    def __init__(self, name: str, stack: str, db_url: pulumi.Input[str], triggers: list[pulumi.Input[str]],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("supabase-platform:delivery:Verification", name, None, opts)
        self.command = local.Command(
            f"{name}-verify",
            create=f"uv run supagate verify --stack {stack}",
            # The URL travels in the environment (a secret), never on the command line.
            environment=pulumi.Output.secret(db_url).apply(lambda url: {"SUPABASE_DB_URL": url}),
            triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["environment"]))
        self.register_outputs({})
