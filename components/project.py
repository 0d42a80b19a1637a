"""The Supabase project: its settings, edge functions and function secrets, managed
through the Management API with the stack's access token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.providers.edge_function import EdgeFunction
from components.providers.function_secrets import FunctionSecrets
from components.providers.project_settings import ProjectSettings
from supagate.supabase_api.edge_functions import EdgeFunctionSource


@dataclass
class ProjectArgs:
    project_ref: str
    access_token: pulumi.Input[str]  # a Pulumi secret
    settings: dict[str, Any]  # supagate.supabase_api.project_settings.desired_state(...)
    functions: list[EdgeFunctionSource]
    secrets: dict[str, pulumi.Input[str]] = field(default_factory=dict)  # name -> Pulumi secret
    api_url: str = "https://api.supabase.com"
    allow_unlisted_api: bool = False  # the stack's allowUnlistedManagementApi
    allow_restart: bool = False


class Project(pulumi.ComponentResource):
    def __init__(self, name: str, args: ProjectArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("supabase-platform:project:Project", name, None, opts)
        token = pulumi.Output.secret(args.access_token)
        common = {"project_ref": args.project_ref, "api_url": args.api_url, "access_token": token,
                  # Only when set, so the inputs of every other stack stay as they were.
                  **({"allow_unlisted_api": True} if args.allow_unlisted_api else {})}
        child = pulumi.ResourceOptions(parent=self)
        self.settings = ProjectSettings(f"{name}-settings", {**common, **args.settings,
                                                             "allow_restart": args.allow_restart}, child)
        # Secrets first: a function deployed before its secret exists would start without it.
        self.secrets = FunctionSecrets(f"{name}-secrets", {
            **common, "secrets": pulumi.Output.secret({k: pulumi.Output.secret(v) for k, v in args.secrets.items()}),
        }, child)
        self.functions = {
            fn.slug: EdgeFunction(f"{name}-fn-{fn.slug}", {**common, **fn.inputs()},
                                  pulumi.ResourceOptions(parent=self, depends_on=[self.secrets]))
            for fn in args.functions}
        self.function_versions = {slug: f.version for slug, f in self.functions.items()}
        self.register_outputs({"function_versions": self.function_versions})
