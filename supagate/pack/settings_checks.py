"""The pack's checks of project settings, functions, secrets and GitHub environments, as
plain functions of a resource's inputs (see checks.py for the contract: Findings that
violate, never a pass for a value the check cannot read)."""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from supagate.findings import Finding
from supagate.offline.resource_types import SECRET_INPUTS, SECRET_OUTPUTS
from supagate.pack.checks import _unreadable, _violation, plain


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ssl_violations(props: dict[str, Any]) -> list[Finding]:
    if props.get("ssl_enforced") is True:
        return []
    ref = props.get("project_ref")
    return [_violation("ssl", str(ref), f"Project {ref} accepts database connections without SSL.",
                       "Set sslEnforced: true in the stack's config.")]


def network_violations(props: dict[str, Any]) -> list[Finding]:
    ref = props.get("project_ref")
    restrictions = plain(props.get("network_restrictions")) or {}
    if not isinstance(restrictions, dict):
        return [_unreadable("network", str(ref), "the network restrictions", restrictions,
                            "Pass {dbAllowedCidrs, dbAllowedCidrsV6}.")]
    cidrs = list(restrictions.get("dbAllowedCidrs") or []) + list(restrictions.get("dbAllowedCidrsV6") or [])
    if not cidrs:
        return [_violation("network", str(ref), f"Project {ref} accepts database connections from any address.",
                           "List the CIDRs that need access in networkRestrictions.")]
    found = []
    for cidr in cidrs:
        try:
            if not isinstance(cidr, str):
                raise TypeError(cidr)
            network = ipaddress.ip_network(cidr, strict=False)
        except (ValueError, TypeError):
            found.append(_violation("network", str(cidr), f"Network restriction {cidr!r} is not a CIDR.",
                                    "Use a form like 203.0.113.0/24."))
            continue
        if network.prefixlen == 0:
            found.append(_violation("network", cidr, f"Network restriction {cidr} opens the database to the whole "
                                    "internet.", "List only the CIDRs that need access."))
    return found


def jwt_expiry_violations(props: dict[str, Any], maximum: int) -> list[Finding]:
    auth = plain(props.get("auth")) or {}
    expiry = auth.get("jwt_exp") if isinstance(auth, dict) else None
    ref, fix = props.get("project_ref"), f"Set auth.jwtExpiry to {int(maximum)} or less."
    if not _number(expiry):
        return [_unreadable("jwt-expiry", str(ref), f"the access token lifetime of project {ref}", expiry, fix)]
    if expiry <= maximum:
        return []
    return [_violation("jwt-expiry", str(ref), f"Project {ref} issues access tokens valid for {expiry} s, more than "
                       f"{maximum} s.", fix)]


def password_length_violations(props: dict[str, Any], minimum: int) -> list[Finding]:
    auth = plain(props.get("auth")) or {}
    length = auth.get("password_min_length") if isinstance(auth, dict) else None
    ref, fix = props.get("project_ref"), f"Set auth.passwordMinLength to at least {int(minimum)}."
    if not _number(length):
        return [_unreadable("password-length", str(ref), f"the minimum password length of project {ref}", length, fix)]
    if length >= minimum:
        return []
    return [_violation("password-length", str(ref), f"Project {ref} accepts passwords of {length} characters, fewer "
                       f"than {minimum}.", fix)]


def function_jwt_violations(props: dict[str, Any], allow_unverified: Iterable[str]) -> list[Finding]:
    slug, verify = props.get("slug"), props.get("verify_jwt")
    if verify is True:
        return []
    if verify is not False:
        return [_unreadable("function-jwt", str(slug), f"whether edge function {slug} verifies JWTs", verify,
                            "Set verify_jwt to true or false.")]
    if slug not in set(allow_unverified):
        return [_violation("function-jwt", str(slug), f"Edge function {slug} runs without JWT verification and is "
                           "not on the allow-list.", "Turn verify_jwt back on, or add the slug to this policy's "
                           "allowUnverified in policies/config/<stack>.json after review.")]
    if not props.get("signature_header"):
        return [_violation("function-jwt", str(slug), f"Edge function {slug} runs without JWT verification and "
                           "checks no signature.", "Set functions.<slug>.signatureHeader to the header it verifies "
                           "(HMAC).")]
    return []


def secret_output_violations(type_: str, props: dict[str, Any], secret_outputs: Iterable[str]) -> list[Finding]:
    declared = set(secret_outputs or ())
    kind = type_.rsplit(":", 1)[-1]
    found = [_violation("secret-outputs", key, f"Input {key} of this {kind} holds secrets but is not a secret output, "
                        "so its value would be stored in plain state.",
                        f"Register the resource with additional_secret_outputs=['{key}'] and pass the value from "
                        "`pulumi config set --secret`.")
             for key in SECRET_INPUTS.get(type_, ()) if key in props and key not in declared]
    found += [_violation("secret-outputs", key, f"Output {key} of this {kind} holds what it read from the database "
                         "but is not a secret output, so the state would store it in plain text.",
                         f"Register the resource with additional_secret_outputs=['{key}'].")
              for key in SECRET_OUTPUTS.get(type_, ()) if key not in declared]
    if type_.endswith("FunctionSecrets"):
        secrets = plain(props.get("secrets")) or {}
        if not isinstance(secrets, dict):
            return found + [_unreadable("secret-outputs", "secrets", "the function secrets", type(secrets).__name__,
                                        "Pass secrets as a map of NAME to value.")]
        found += [_violation("secret-outputs", name, f"Function secret {name} is empty.",
                             f"pulumi config set --secret --path 'functionSecrets.{name}' VALUE.")
                  for name, value in secrets.items() if not value]
    return found


def environment_violations(props: dict[str, Any]) -> list[Finding]:
    name = props.get("environment")
    found = []

    def violation(message: str, fix: str) -> None:
        found.append(_violation("environment", str(name), message, fix))

    reviewers = plain(props.get("reviewers")) or []
    if not isinstance(reviewers, list) or not all(isinstance(r, dict) for r in reviewers):
        violation(f"The policy cannot read the reviewers of GitHub environment {name}.",
                  "List a team or user under github.environment.reviewers.")
    elif not [r for r in reviewers if r.get("teams") or r.get("users")]:
        violation(f"GitHub environment {name} deploys without a required reviewer.",
                  "List a team or user under github.environment.reviewers.")
    if props.get("preventSelfReview") is not True:
        violation(f"GitHub environment {name} lets whoever started a deploy approve it.",
                  "Set github.environment.preventSelfReview: true.")
    if props.get("canAdminsBypass") is not False:
        violation(f"GitHub environment {name} lets repository admins skip its protection rules.",
                  "Set can_admins_bypass to false.")
    policy = plain(props.get("deploymentBranchPolicy")) or {}
    if not isinstance(policy, dict) or not (policy.get("protectedBranches") or policy.get("customBranchPolicies")):
        violation(f"GitHub environment {name} accepts deploys from any branch.",
                  "Limit it to protected branches or to the release tags (deploymentBranches/deploymentTags).")
    return found
