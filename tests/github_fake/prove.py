"""Drives the GitHub fake (tests/github_fake) with PyGithub, a real client of GitHub's REST API.

Usage: prove.py URL TOKEN REPO ENVIRONMENT ORG REPO_ID MODE, where MODE is
  secrets    create, update, list and delete repository, environment, Dependabot and organisation
             secrets (PyGithub fetches each public key and seals the value with PyNaCl itself)
  secondary  read until a secondary rate limit refuses
  primary    read until the primary rate limit refuses
Exits non-zero naming the first surprise; otherwise prints one JSON line of observations, which
tests/github_fake_clients.rs checks (and opens the stored values with PyNaCl).
"""

import json
import sys
import time

from github import Auth, Github, GithubException, RateLimitExceededException


def client(url, token, per_page=30):
    # No retries and no pacing: a refusal must reach the script, once, as GitHub sent it.
    return Github(
        base_url=url,
        auth=Auth.Token(token),
        per_page=per_page,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
        timeout=20,
    )


def check(condition, what):
    if not condition:
        sys.exit(f"prove.py: {what}")


def expect_error(status, what, call):
    """Runs call, which must fail with HTTP `status`; returns the GithubException."""
    try:
        call()
    except GithubException as e:
        check(e.status == status, f"{what}: expected HTTP {status}, got {e.status}: {e.data}")
        return e
    sys.exit(f"prove.py: {what}: expected HTTP {status}, the call succeeded")


def lower_headers(headers):
    return {k.lower(): v for k, v in (headers or {}).items()}


def secrets(url, token, repo_name, env_name, org_name, repo_id):
    g = client(url, token)
    seen = {}
    repo = g.get_repo(repo_name)
    check(repo.id == repo_id, f"repository id {repo.id}, expected {repo_id}")
    check(repo.full_name == repo_name, f"full_name {repo.full_name}")
    check(repo.private, "the repository is private")
    seen["owner_type"] = repo.owner.type

    # A lower-case name is stored upper-cased; the second write of a name updates it.
    repo.create_secret("db_password", "hunter2")
    repo.create_secret("DB_PASSWORD", "hunter3")
    repo.create_secret("API_TOKEN", "tok-1")
    repo.create_secret("DEP_TOKEN", "dep-1", secret_type="dependabot")

    environment = repo.get_environment(env_name)
    seen["environment"] = environment.name
    environment.create_secret("DEPLOY_KEY", "ssh-ed25519 AAAA prover")

    org = g.get_organization(org_name)
    seen["org_login"] = org.login
    org.create_secret("ORG_SHARED", "shared-1", visibility="selected", selected_repositories=[repo])

    seen["repo_secrets"] = [s.name for s in repo.get_secrets()]
    paged = client(url, token, per_page=1).get_repo(repo_name).get_secrets()
    seen["paged_total"] = paged.totalCount
    seen["paged_names"] = [s.name for s in paged]
    seen["environment_secrets"] = [s.name for s in environment.get_secrets()]
    seen["dependabot_secrets"] = [s.name for s in repo.get_secrets(secret_type="dependabot")]
    org_secrets = list(org.get_secrets())
    seen["org_secrets"] = [[s.name, s.visibility] for s in org_secrets]
    seen["org_selected"] = [r.full_name for r in org_secrets[0].selected_repositories]

    db = repo.get_secret("DB_PASSWORD")
    check(db.updated_at > db.created_at, f"updated_at {db.updated_at} after created_at {db.created_at}")
    seen["db_name"] = db.name

    check(repo.delete_secret("API_TOKEN"), "deleting API_TOKEN answers 204")
    seen["deleted_again"] = repo.delete_secret("API_TOKEN")
    gone = expect_error(404, "reading the deleted API_TOKEN", lambda: repo.get_secret("API_TOKEN"))
    seen["not_found"] = gone.data["message"]
    missing = expect_error(404, "reading a secret never made", lambda: repo.get_secret("NEVER_MADE"))
    seen["missing_status"] = missing.status
    refused = expect_error(422, "a GITHUB_ name", lambda: repo.create_secret("GITHUB_X", "v"))
    seen["github_prefix"] = refused.data["message"]
    print(json.dumps(seen))


def secondary(url, token, repo_name):
    g = client(url, token)
    ok = 0
    for _ in range(50):
        try:
            g.get_repo(repo_name)
            ok += 1
        except GithubException as e:
            headers = lower_headers(e.headers)
            print(json.dumps({
                "ok": ok,
                "status": e.status,
                "message": e.data.get("message"),
                "retry_after": headers.get("retry-after"),
            }))
            return
    sys.exit("prove.py: 50 reads and no secondary rate limit")


def primary(url, token, repo_name):
    g = client(url, token)
    ok = 0
    remaining = []
    for _ in range(50):
        try:
            g.get_repo(repo_name)
            ok += 1
            remaining.append(list(g.rate_limiting))
        except RateLimitExceededException as e:
            headers = lower_headers(e.headers)
            print(json.dumps({
                "ok": ok,
                "remaining_seen": remaining,
                "status": e.status,
                "message": e.data.get("message"),
                "remaining": headers.get("x-ratelimit-remaining"),
                "reset_in": int(headers.get("x-ratelimit-reset", "0")) - int(time.time()),
                "resettime_attr": g.rate_limiting_resettime - int(time.time()),
            }))
            return
    sys.exit("prove.py: 50 reads and no primary rate limit")


def main():
    url, token, repo_name, env_name, org_name, repo_id, mode = sys.argv[1:8]
    if mode == "secrets":
        secrets(url, token, repo_name, env_name, org_name, int(repo_id))
    elif mode == "secondary":
        secondary(url, token, repo_name)
    elif mode == "primary":
        primary(url, token, repo_name)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
