"""Stack settings: `supabase-platform:*` config of one stack, loaded once into frozen models.

Pulumi.yaml gives every key its type, default and description; these models check the
values (ranges, formats, cross-key rules); config/loading.py turns their errors into one
message that names each key and the stack file, before the program registers a single
resource.
Secret values are held as SecretStr (masked in repr and errors) and wrapped as Pulumi
secrets by the components.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from supagate.config.models_base import Model
from supagate.config.operations import AlertSettings, MaintenanceSettings

from supagate.gates.catalog.model import DEFAULT_EXPOSED_SCHEMAS

NAMESPACE = "supabase-platform"
SECRET_KEYS = ("dbUrl", "supabaseAccessToken", "functionSecrets", "githubToken", "pulumiAccessToken",
               "verifyDbUrl", "alertSecrets")
_TIMEOUT = r"^\d+(ms|s|min|h)?$"


_Model = Model


class AuthSettings(_Model):
    site_url: str = "http://localhost:3000"
    redirect_urls: tuple[str, ...] = ()
    jwt_expiry: int = Field(3600, ge=30, le=604800)
    password_min_length: int = Field(10, ge=6, le=72)
    password_requirements: Literal["", "letters_digits", "lower_upper_letters_digits",
                                   "lower_upper_letters_digits_symbols"] = "lower_upper_letters_digits"
    mfa_totp: bool = True
    signup_enabled: bool = True
    email_confirmations: bool = True
    rate_limit_email_sent: int = Field(30, ge=1)

    @field_validator("site_url", "redirect_urls")
    @classmethod
    def _urls(cls, value):
        for url in ([value] if isinstance(value, str) else value):
            if not re.match(r"^https?://[^\s/]+", url):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return value


class BackupSettings(_Model):
    pitr_enabled: bool = False
    max_backup_age_hours: int = Field(24, ge=1, le=168)
    snapshot_retention_days: int = Field(30, ge=1, le=90)  # the deploy's pg_dump, kept as a workflow artifact
    # Refused: where the snapshot is encrypted to is the production environment's secret
    # SNAPSHOT_RECIPIENTS, which no stack file (and so no pull request) can set.
    snapshot_recipients: tuple[str, ...] = ()

    @field_validator("snapshot_recipients")
    @classmethod
    def _recipients(cls, value):
        if value:  # not echoed: it may be a pasted secret key
            raise ValueError(
                "the snapshot's age recipients are not read from the stack (a pull request could name its own "
                "key here and be sent prod's dump): remove this key, and set the production environment's secret "
                "instead: gh secret set SNAPSHOT_RECIPIENTS --env production --body \"$(age-keygen -y key.txt)\"")
        return value


class FunctionOverride(_Model):
    verify_jwt: bool | None = None
    signature_header: str | None = None  # required when verify_jwt is off
    import_map: str | None = None


class EnvironmentSettings(_Model):
    reviewers: tuple[str, ...] = ()
    prevent_self_review: bool = True
    wait_timer_minutes: int = Field(0, ge=0, le=43200)
    deployment_branches: tuple[str, ...] = ("main",)
    deployment_tags: tuple[str, ...] = ()
    admins_bypass: bool = False


class GithubSettings(_Model):
    repository: str = ""
    environment: EnvironmentSettings = EnvironmentSettings()
    required_checks: tuple[str, ...] = ("tests", "app-tests", "gate", "workflows", "preview-staging", "preview-prod")
    # Who may create release tags (`org/team` or user); default: the environment's reviewers.
    release_managers: tuple[str, ...] = ()

    @field_validator("repository")
    @classmethod
    def _repo(cls, value: str) -> str:
        if value and not re.match(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+\Z", value):
            raise ValueError(f"{value!r} is not owner/name")
        return value


class MonitoringSettings(_Model):
    health_url: str = ""
    interval_minutes: int = Field(5, ge=5, le=1440)
    max_overdue_jobs: int = Field(25, ge=0)
    max_dead_letters_24h: int = Field(10, ge=0, alias="maxDeadLetters24h")
    max_transaction_age_seconds: int = Field(300, ge=1)
    max_connections_percent: int = Field(80, ge=1, le=100)

    @property
    def health_function(self) -> str | None:
        """The edge function the health workflow probes (`.../functions/v1/<slug>`)."""
        match = re.search(r"/functions/v1/([A-Za-z0-9_-]+)/?$", self.health_url)
        return match.group(1) if match else None

    def health_function_env(self) -> dict[str, str]:
        """The thresholds the health function reads from its environment; without them it
        would judge with its own defaults whatever the stack declares."""
        return {"HEALTH_MAX_OVERDUE_JOBS": str(self.max_overdue_jobs),
                "HEALTH_MAX_DEAD_LETTERS_24H": str(self.max_dead_letters_24h)}


class PoolerSettings(_Model):
    default_pool_size: int | None = Field(None, ge=0, le=3000)
    pool_mode: Literal["transaction", "session"] = "transaction"


class StorageSettings(_Model):
    file_size_limit: int = Field(52428800, ge=0, le=536870912000)  # bytes
    image_transformation: bool = False


class FeatureFlag(_Model):
    """A flag: `kind` release (rolled out by a plan), safety (on for everyone, always) or ops.
    A plan is a preset (internal-10-50-100, canary-5-25-50-100) or steps ([internal, 5, 25,
    100]); `step` is where the stack wants it. Without a plan, rolloutPercentage is the one step."""
    kind: Literal["release", "safety", "ops"] = "release"
    enabled: bool = False
    rollout_percentage: float = Field(100, ge=0, le=100)
    audience: str = Field("everyone", pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    plan: str | tuple[str | float, ...] = ""
    step: int | None = Field(None, ge=0)
    soak: str = "0s"
    paused: bool = False
    advance: Literal["manual", "auto"] = "manual"
    guards: tuple[str, ...] = ()
    internal_users: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _safety_defaults_on(cls, data):
        # A safety flag, or one with a rollout plan, is meant to be on: say `enabled: false` to stop it.
        if isinstance(data, dict) and "enabled" not in data and (data.get("kind") == "safety" or data.get("plan")):
            return {**data, "enabled": True}
        return data

    def plan_steps(self) -> list[int]:
        from supagate.ops.flags import INTERNAL, PRESETS

        if isinstance(self.plan, str) and self.plan:
            return list(PRESETS[self.plan])
        if self.plan:
            return [INTERNAL if step == "internal" else round(float(step) * 100) for step in self.plan]
        return [round(self.rollout_percentage * 100)]

    def current_step(self) -> int:
        return self.step or 0

    @model_validator(mode="after")
    def _rules(self):
        from supagate.ops.flags import PRESETS, plan_problems
        from supagate.ops.kinds import seconds

        seconds(self.soak, "soak")
        if isinstance(self.plan, str) and self.plan and self.plan not in PRESETS:
            raise ValueError(f"plan {self.plan!r} is not a preset ({', '.join(PRESETS)}) or a list of steps")
        if not isinstance(self.plan, str) and any(
                isinstance(s, str) and s != "internal" for s in self.plan):
            raise ValueError("plan steps are percentages or 'internal'")
        if self.kind == "safety":
            wrong = [what for what, bad in (("enabled: false", not self.enabled), ("paused", self.paused),
                                            ("a plan", bool(self.plan) or self.step is not None),
                                            ("a partial rollout", self.rollout_percentage < 100),
                                            (f"audience {self.audience}", self.audience != "everyone"),
                                            ("auto advance", self.advance != "manual")) if bad]
            if wrong:
                raise ValueError(f"a safety flag stays on for everyone; remove {', '.join(wrong)}")
        if self.plan:
            problems = plan_problems("", self.plan_steps())
            if problems:
                raise ValueError("; ".join(p.removeprefix("featureFlags.: ") for p in problems))
        if self.step is not None and self.step >= len(self.plan_steps()):
            raise ValueError(f"step {self.step} is past the plan's last step ({len(self.plan_steps()) - 1})")
        return self


class RateLimit(_Model):
    """A function's limit: `limit` requests per `window` per client address (or user)."""
    limit: int = Field(ge=1, le=1_000_000)
    window: str = "1m"
    key: Literal["ip", "user"] = "ip"
    probe: bool = False  # `supagate verify --rate-limit` proves it after each deploy

    @field_validator("window")
    @classmethod
    def _window(cls, value):
        from supagate.ops.kinds import seconds

        if not 1 <= seconds(value, "window") <= 86400:
            raise ValueError(f"window {value!r} is outside 1 s..24 h")
        return value

    def window_seconds(self) -> int:
        from supagate.ops.kinds import seconds

        return int(seconds(self.window, "window"))


class SeedSettings(_Model):
    enabled: bool = False
    paths: tuple[str, ...] = ()  # relative to supabase/; default: config.toml [db.seed] sql_paths


class MigrationSettings(_Model):
    directory: str = "supabase/migrations"
    lock_timeout: str = Field("10s", pattern=_TIMEOUT)
    statement_timeout: str = Field("15min", pattern=_TIMEOUT)
    # Migrations at or before this version are history: per-statement gate rules skip them.
    baseline: str = Field("", pattern=r"^[0-9]*$")


class Settings(_Model):
    stack: str
    # What the stack is, whatever it is called: enforcement, promotion, snapshots and
    # pre-deploy checks follow the tier, never the stack's name.
    tier: Literal["production", "staging", "development"]
    project_ref: str
    region: str = "us-east-1"
    exposed_schemas: tuple[str, ...] = DEFAULT_EXPOSED_SCHEMAS
    max_rows: int = Field(1000, ge=1, le=1_000_000)
    postgres: dict[str, str | int | float | bool] = {}
    allow_restart: bool = False
    auth: AuthSettings = AuthSettings()
    pooler: PoolerSettings | None = None
    storage: StorageSettings | None = None
    # Declared before the URL, whose check reads it: the token may go to an unlisted host.
    allow_unlisted_management_api: bool = False
    management_api_url: str = "https://api.supabase.com"
    network_restrictions: tuple[str, ...] = ()
    ssl_enforced: bool = True
    backups: BackupSettings = BackupSettings()
    functions: dict[str, FunctionOverride] = {}
    secret_names: tuple[str, ...] = ()
    github: GithubSettings = GithubSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    feature_flags: dict[str, FeatureFlag] = {}
    alerts: AlertSettings = AlertSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    seed: SeedSettings = SeedSettings()
    rate_limits: dict[str, RateLimit] = {}
    migrations: MigrationSettings = MigrationSettings()
    # fully qualified stack reference prod promotes from; its parts reach the generated workflows
    staging_stack: str = Field("", pattern=r"^$|^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    no_staging_reason: str = ""  # a production tier that promotes from nothing must say why
    # secrets
    db_url: SecretStr | None = None
    supabase_access_token: SecretStr | None = None
    function_secrets: dict[str, SecretStr] = {}
    github_token: SecretStr | None = None
    pulumi_access_token: SecretStr | None = None
    verify_db_url: SecretStr | None = None
    alert_secrets: dict[str, SecretStr] = {}

    @property
    def is_production(self) -> bool:
        return self.tier == "production"

    def alert_rules(self) -> list[dict]:
        """The stack's alert rules in canonical form; monitoring.maxOverdueJobs and
        maxDeadLetters24h are the thresholds of the overdue-jobs and dead-letters rules
        unless those rules set their own, and add those rules when the stack sets them (an
        app without a job queue sets neither and gets neither)."""
        declared = self.monitoring.model_fields_set
        return self.alerts.canonical_rules(
            {"overdueJobs": self.monitoring.max_overdue_jobs, "deadLetters": self.monitoring.max_dead_letters_24h},
            add=tuple(kind for kind, key in (("overdueJobs", "max_overdue_jobs"), ("deadLetters", "max_dead_letters_24h"))
                      if key in declared))

    @field_validator("project_ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        if not re.match(r"^[a-z]{20}\Z", value):
            raise ValueError("must be the 20 lower-case letters of the project's reference "
                             "(Project Settings > General)")
        return value

    @field_validator("exposed_schemas")
    @classmethod
    def _schemas(cls, value):
        for schema in value:
            if not re.match(r"^[a-z_][a-z0-9_]*\Z", schema):
                raise ValueError(f"{schema!r} is not a schema name")
        if not value:
            raise ValueError("at least one schema must be exposed")
        return value

    @field_validator("postgres")
    @classmethod
    def _postgres(cls, value):
        from supagate.supabase_api.areas import POSTGRES_PARAMETERS

        for key, item in value.items():
            if key not in POSTGRES_PARAMETERS:
                raise ValueError(f"{key!r} cannot be set through the Management API (settable: "
                                 f"{', '.join(sorted(POSTGRES_PARAMETERS))}); set it in a migration with "
                                 "ALTER ROLE/ALTER DATABASE instead")
            wanted = POSTGRES_PARAMETERS[key]
            if wanted is bool and not isinstance(item, bool) or wanted is int and (
                    isinstance(item, bool) or not isinstance(item, int)):
                raise ValueError(f"{key} must be a {wanted.__name__}, not {item!r}")
        return value

    @field_validator("management_api_url")
    @classmethod
    def _api_url(cls, value: str, info: ValidationInfo) -> str:
        from supagate.supabase_api.endpoint import refusal

        refused = refusal(value, bool(info.data.get("allow_unlisted_management_api")))
        if refused:
            raise ValueError(refused)
        return value.rstrip("/")

    @field_validator("network_restrictions")
    @classmethod
    def _cidrs(cls, value):
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a valid CIDR ({exc})") from None
        return value

    @field_validator("secret_names")
    @classmethod
    def _secret_names(cls, value):
        for name in value:
            if name.startswith("SUPABASE_"):
                raise ValueError(f"{name!r}: names starting with SUPABASE_ are reserved by Supabase")
            if not re.match(r"^[A-Z_][A-Z0-9_]*\Z", name):
                raise ValueError(f"{name!r} is not an environment variable name (A-Z, 0-9, _)")
        return value

    @field_validator("db_url")
    @classmethod
    def _db_url(cls, value):
        if value is not None and not re.match(r"^postgres(ql)?://", value.get_secret_value()):
            raise ValueError("must be a postgresql:// connection string")
        return value

    def _alert_secret_names(self) -> list[str]:
        """alertSecrets become secrets of the production-health environment beside the verify
        URL: a name GitHub would take for one it already holds (it ignores case) is refused."""
        from supagate.delivery.environments import alert_secret_refusal

        problems, seen = [], {}
        names = {*self.alert_secrets, *(n for c in self.alerts.channels.values() for n in (c.secret, c.sign_with) if n)}
        for name in sorted(names):
            refusal = alert_secret_refusal(name)
            if refusal:
                problems.append(f"alertSecrets.{name}: {refusal}")
            elif name.upper() in seen and seen[name.upper()] != name:
                problems.append(f"alertSecrets.{name} and alertSecrets.{seen[name.upper()]} differ only in case, "
                                "and GitHub ignores case: they would be one secret; rename one")
            seen.setdefault(name.upper(), name)
        return problems

    @model_validator(mode="after")
    def _cross_checks(self):
        problems = []
        missing = [n for n in self.secret_names if n not in self.function_secrets]
        if missing:
            problems.append(f"secretNames lists {', '.join(missing)} but functionSecrets has no value "
                            "for them (pulumi config set --secret --path "
                            f"'functionSecrets.{missing[0]}' VALUE)")
        problems += self._alert_secret_names()
        for name, channel in self.alerts.channels.items():
            for key in (channel.secret, channel.sign_with):
                # An empty value is no value: an empty HMAC key would sign every alert with ''.
                if key and not (key in self.alert_secrets and self.alert_secrets[key].get_secret_value()):
                    problems.append(f"alerts.channels.{name} uses {key} but alertSecrets has no value for it "
                                    f"(pulumi config set --secret --path 'alertSecrets.{key}' VALUE)")
        rule_names = {r["name"] for r in self.alert_rules()} if any(f.guards for f in self.feature_flags.values()) \
            else set()
        for key, flag in self.feature_flags.items():
            if not re.match(r"^[a-z][a-z0-9_]*\Z", key):
                problems.append(f"featureFlags.{key}: flag keys are lower-case letters, digits and _")
            unknown = [g for g in flag.guards if g not in rule_names]
            if unknown:
                problems.append(f"featureFlags.{key}.guards names {unknown[0]!r}, which is not an alert rule "
                                "(alerts.rules)")
        for slug, override in self.functions.items():
            if override.verify_jwt is False and not override.signature_header:
                problems.append(f"functions.{slug}: verifyJwt is false without a signatureHeader; "
                                "say which header the function checks instead")
        if self.is_production and not self.staging_stack and not self.no_staging_reason.strip():
            problems.append("tier production without stagingStack: prod would deploy SQL no staging ran; set "
                            "stagingStack to the staging stack (org/supabase-platform/staging), or say why there "
                            "is none with noStagingReason")
        if any(r.probe for r in self.rate_limits.values()) and "RATE_LIMIT_PROBE_SECRET" not in self.secret_names:
            problems.append("rateLimits: a probed limit needs RATE_LIMIT_PROBE_SECRET in secretNames (the function "
                            "checks the probe's signature with it): add it and set functionSecrets.RATE_LIMIT_PROBE_SECRET")
        if self.is_production and self.allow_unlisted_management_api:
            problems.append("allowUnlistedManagementApi on a production tier: prod's organisation-wide access token "
                            "would go to a host that is not api.supabase.com, on one line of a stack file; remove it "
                            "(a mock or proxy is for staging and development stacks)")
        if self.is_production and self.seed.enabled:
            problems.append("seed.enabled on a production tier: seed data never runs on production (set it on "
                            "staging or development stacks only)")
        if self.is_production and "0.0.0.0/0" in self.network_restrictions:
            problems.append("networkRestrictions: 0.0.0.0/0 opens the prod database to the internet; "
                            "list the CIDRs that need access")
        if problems:
            raise ValueError("; ".join(problems))
        return self
