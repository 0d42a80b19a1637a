"""Post-deploy verification as the last step of `pulumi up`: `supagate verify` runs after
the migrations and the project's functions, so a failed verification fails the deploy."""

from __future__ import annotations

import pulumi
from pulumi_command import local

from supagate.offline.resource_types import COMMAND_SECRET_OUTPUTS


class Verification(pulumi.ComponentResource):
    def __init__(self, name: str, stack: str, db_url: pulumi.Input[str], triggers: list[pulumi.Input[str]],
                 opts: pulumi.ResourceOptions | None = None, probe_secret: pulumi.Input[str] | None = None):
        super().__init__("supabase-platform:delivery:Verification", name, None, opts)
        # With a probed rate limit the deploy also proves it (signed probe requests).
        probe = " --rate-limit" if probe_secret is not None else ""
        secrets = pulumi.Output.all(db_url, probe_secret).apply(
            lambda values: {"SUPABASE_DB_URL": values[0],
                            **({"RATE_LIMIT_PROBE_SECRET": values[1]} if values[1] is not None else {})})
        self.command = local.Command(
            f"{name}-verify",
            create=f"uv run supagate verify --stack {stack}{probe}",
            # The URL and the probe's key travel in the environment (a secret), never on the command line.
            environment=pulumi.Output.secret(secrets),
            triggers=triggers,
            # Its report (stdout, stderr) is read from prod: stored encrypted in the state.
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=list(COMMAND_SECRET_OUTPUTS)))
        self.register_outputs({})
