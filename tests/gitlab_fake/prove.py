"""Drives the GitLab fake (tests/gitlab_fake) with python-gitlab.

Usage: prove.py URL PHASE MAINTAINER_TOKEN DEVELOPER_TOKEN REVOKED_TOKEN EXPIRED_TOKEN
PROJECT_ID PROJECT_PATH GROUP_ID GROUP_PATH

PHASE "main" exercises projects, groups and their CI/CD variables; PHASE "throttled" runs
against a fake limited to 2 requests per 2-second window. Checks what GitLab would answer,
exits non-zero with a message naming the first surprise, and otherwise prints one JSON line of
observations.
"""

import json
import sys
import time

import gitlab
from gitlab import exceptions as errors


def check(condition, what):
    if not condition:
        sys.exit(f"prove.py: {what}")


def expect_error(kind, code, what, call):
    """Runs call, which must raise python-gitlab's `kind` with HTTP `code`; returns the error."""
    try:
        call()
    except kind as e:
        check(e.response_code == code,
              f"{what}: expected HTTP {code}, got {e.response_code}: {e.response_body!r}")
        return e
    except errors.GitlabError as e:
        sys.exit(f"prove.py: {what}: expected {kind.__name__}, got {type(e).__name__}: {e!r}")
    sys.exit(f"prove.py: {what}: expected HTTP {code}, the call succeeded")


def client(url, token, **options):
    return gitlab.Gitlab(url, private_token=token, retry_transient_errors=False, **options)


def summary(variable):
    return {k: getattr(variable, k) for k in (
        "key", "value", "variable_type", "protected", "masked", "hidden", "raw",
        "environment_scope", "description")}


PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n"


def main_phase(url, tokens, project_id, project_path, group_id, group_path):
    maintainer, developer, revoked, expired = tokens
    gl = client(url, maintainer)
    seen = {}

    # Projects by id and by path.
    project = gl.projects.get(project_id)
    check(project.path_with_namespace == project_path,
          f"project {project_id} is {project.path_with_namespace}")
    by_path = gl.projects.get(project_path)
    check(by_path.id == project_id, f"{project_path} is project {by_path.id}")
    seen["project"] = {"id": by_path.id, "name": by_path.name,
                       "namespace": by_path.namespace["full_path"]}
    missing = expect_error(errors.GitlabGetError, 404, "a project that does not exist",
                           lambda: gl.projects.get(999999))
    seen["missing_project"] = missing.error_message

    # Variables of every kind, the same key in two environment scopes.
    created = project.variables.create({
        "key": "DB_PASSWORD", "value": "s3cr3t-Passw0rd", "masked": True, "protected": True,
        "environment_scope": "production", "description": "the production database"})
    seen["created"] = summary(created)
    project.variables.create({"key": "DB_PASSWORD", "value": "staging-pass-1234",
                              "masked": True, "environment_scope": "staging"})
    cert = project.variables.create({"key": "TLS_CERT", "value": PEM, "variable_type": "file",
                                     "raw": True})
    check(cert.variable_type == "file" and cert.value == PEM, f"file variable: {summary(cert)}")
    raw_masked = project.variables.create({"key": "RAW_MASKED", "value": "p@ss$word!#%",
                                           "masked": True, "raw": True})
    check(raw_masked.masked and raw_masked.raw, f"masked raw variable: {summary(raw_masked)}")
    hidden = project.variables.create({"key": "HIDDEN", "value": "hidden-value-123",
                                       "masked_and_hidden": True})
    seen["hidden"] = summary(hidden)
    for i in range(22):
        project.variables.create({"key": f"BULK_{i:02}", "value": f"value {i}"})

    # Lists: every page with get_all, one page without.
    listed = project.variables.list(get_all=True)
    seen["listed_keys"] = [v.key for v in listed]
    listed_scopes = [(v.key, v.environment_scope) for v in listed if v.key == "DB_PASSWORD"]
    check(listed_scopes == [("DB_PASSWORD", "production"), ("DB_PASSWORD", "staging")],
          f"both DB_PASSWORD scopes listed: {listed_scopes}")
    pages = project.variables.list(iterator=True)
    first_page = [v.key for v in pages]
    seen["iterator"] = {"total": pages.total, "total_pages": pages.total_pages,
                        "per_page": pages.per_page, "count": len(first_page)}
    second = project.variables.list(page=2, per_page=10)
    seen["page_2_of_10"] = [v.key for v in second]

    # One of two variables sharing a key needs the filter.
    conflict = expect_error(errors.GitlabGetError, 409, "DB_PASSWORD without a filter",
                            lambda: project.variables.get("DB_PASSWORD"))
    seen["conflict"] = conflict.error_message
    staging = project.variables.get("DB_PASSWORD", filter={"environment_scope": "staging"})
    seen["staging_value"] = staging.value

    # Update with save(filter=...), then an update the filter is missing from.
    production = project.variables.get("DB_PASSWORD", filter={"environment_scope": "production"})
    production.value = "n3w-Passw0rd-2024"
    production.save(filter={"environment_scope": "production"})
    again = project.variables.get("DB_PASSWORD", filter={"environment_scope": "production"})
    seen["updated"] = summary(again)
    expect_error(errors.GitlabUpdateError, 409, "an update of DB_PASSWORD without a filter",
                 lambda: project.variables.update("DB_PASSWORD", {"value": "x" * 12}))
    unmasked = expect_error(errors.GitlabUpdateError, 400, "unmasking a hidden variable",
                            lambda: project.variables.update("HIDDEN", {"masked": False}))
    seen["unmask_hidden"] = unmasked.error_message

    # Refusals: masking, duplicates, bad keys.
    refusals = {}
    for name, attributes in {
        "too_short": {"key": "MASK_SHORT", "value": "short", "masked": True},
        "space": {"key": "MASK_SPACE", "value": "has a space", "masked": True},
        "dollar_expanded": {"key": "MASK_DOLLAR", "value": "abc$defghij", "masked": True},
        "newline_raw": {"key": "MASK_NEWLINE", "value": "line-one\nline-two", "masked": True,
                        "raw": True},
        "duplicate": {"key": "DB_PASSWORD", "value": "another-one", "environment_scope": "staging"},
        "bad_key": {"key": "BAD-KEY", "value": "x"},
        "long_key": {"key": "K" * 256, "value": "x"},
    }.items():
        refused = expect_error(errors.GitlabCreateError, 400, f"creating {name}",
                               lambda a=attributes: project.variables.create(a))
        refusals[name] = refused.error_message
    seen["refusals"] = refusals
    missing_value = expect_error(errors.GitlabHttpError, 400, "a variable without a value",
                                 lambda: gl.http_post(f"/projects/{project_id}/variables",
                                                      post_data={"key": "NO_VALUE"}))
    seen["missing_value"] = missing_value.error_message

    # Delete one scope; the other is then the only DB_PASSWORD.
    project.variables.delete("DB_PASSWORD", filter={"environment_scope": "staging"})
    gone = expect_error(errors.GitlabGetError, 404, "the deleted staging DB_PASSWORD",
                        lambda: project.variables.get("DB_PASSWORD",
                                                      filter={"environment_scope": "staging"}))
    seen["deleted"] = gone.error_message
    seen["after_delete"] = project.variables.get("DB_PASSWORD").environment_scope
    expect_error(errors.GitlabDeleteError, 404, "deleting it again",
                 lambda: project.variables.delete("DB_PASSWORD",
                                                  filter={"environment_scope": "staging"}))
    project.variables.get("BULK_00").delete()

    # Group variables, by id and by path.
    group = gl.groups.get(group_id)
    check(gl.groups.get(group_path).id == group_id, f"group {group_path} by path")
    seen["group_projects"] = [p["path_with_namespace"] for p in group.attributes["projects"]]
    group.variables.create({"key": "GROUP_TOKEN", "value": "gr0up-t0ken-value", "masked": True,
                            "environment_scope": "production"})
    group.variables.create({"key": "GROUP_TOKEN", "value": "gr0up-t0ken-other",
                            "environment_scope": "review/*"})
    group_var = group.variables.get("GROUP_TOKEN", filter={"environment_scope": "review/*"})
    group_var.value = "gr0up-t0ken-review"
    group_var.protected = True
    group_var.save(filter={"environment_scope": "review/*"})
    group.variables.delete("GROUP_TOKEN", filter={"environment_scope": "production"})
    seen["group_variables"] = [summary(v) for v in group.variables.list(get_all=True)]

    # Bearer tokens work as PRIVATE-TOKEN does.
    bearer = gitlab.Gitlab(url, oauth_token=maintainer, retry_transient_errors=False)
    seen["bearer_keys"] = len(bearer.projects.get(project_id, lazy=True)
                              .variables.list(get_all=True))

    # A Developer reads the project, not its variables.
    dev = client(url, developer)
    check(dev.projects.get(project_id).id == project_id, "a Developer reads the project")
    forbidden = expect_error(errors.GitlabListError, 403, "a Developer listing variables",
                             lambda: dev.projects.get(project_id, lazy=True).variables.list())
    seen["developer"] = forbidden.error_message
    expect_error(errors.GitlabCreateError, 403, "a Developer creating a group variable",
                 lambda: dev.groups.get(group_id, lazy=True).variables.create(
                     {"key": "NOPE", "value": "nope"}))

    # Revoked, expired and unknown tokens.
    for name, token in (("revoked", revoked), ("expired", expired), ("unknown", "no-such-token")):
        refused = expect_error(errors.GitlabAuthenticationError, 401, f"a {name} token",
                               lambda t=token: client(url, t).projects.get(project_id))
        seen[name] = json.loads(refused.response_body)

    return seen


def throttled_phase(url, tokens, project_id):
    gl = client(url, tokens[0])
    seen = {}
    # The limit is 2 requests per 2 s: the window starts with the first request.
    gl.projects.get(project_id)
    gl.projects.get(project_id)
    throttled = expect_error(errors.GitlabGetError, 429, "a third request in the window",
                             lambda: gl.projects.get(project_id, obey_rate_limit=False))
    seen["throttled"] = throttled.error_message.decode() \
        if isinstance(throttled.error_message, bytes) else throttled.error_message
    expect_error(errors.GitlabGetError, 429, "with max_retries=0",
                 lambda: gl.projects.get(project_id, max_retries=0))
    # By default python-gitlab waits Retry-After and tries again, in the next window.
    started = time.monotonic()
    project = gl.projects.get(project_id)
    seen["waited"] = round(time.monotonic() - started, 1)
    seen["after_wait"] = project.id
    return seen


def main():
    url, phase, *tokens = sys.argv[1:7]
    project_id, project_path = int(sys.argv[7]), sys.argv[8]
    group_id, group_path = int(sys.argv[9]), sys.argv[10]
    if phase == "main":
        seen = main_phase(url, tokens, project_id, project_path, group_id, group_path)
    elif phase == "throttled":
        seen = throttled_phase(url, tokens, project_id)
    else:
        sys.exit(f"prove.py: unknown phase {phase}")
    print(json.dumps(seen, sort_keys=True))


if __name__ == "__main__":
    main()
