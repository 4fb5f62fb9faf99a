"""Baseline for opsync's GitHub Actions benchmark (benches/github_actions.rs): the same job done the
plain way, as a script around the official clients: the 1Password Connect Python SDK
(onepasswordconnectsdk) lists the vaults and their items and gets every item in full, and
PyGithub writes each item's password as a repository secret named after its title
(`repo.create_secret`, which reads the public key and seals the value with PyNaCl). One request
at a time, as both synchronous clients do, without PyGithub's default pacing.

Usage: OP_CONNECT_HOST=... OP_CONNECT_TOKEN=... python benches/baseline_pygithub.py \
           API_URL TOKEN OWNER/REPO
Prints one JSON line: {"items": N, "seconds": S, "items_per_s": R}.
"""

import re
import sys
import time

import github
from onepasswordconnectsdk import new_client_from_environment


def name_of(title: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", title.upper()).strip("_")


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    api_url, token, full_name = sys.argv[1:]
    # PyGithub paces requests by default (a write a second, as GitHub's guidance on secondary
    # limits asks): off here, so the baseline measures the clients' work, not a sleep.
    gh = github.Github(
        base_url=api_url,
        auth=github.Auth.Token(token),
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    repo = gh.get_repo(full_name)
    connect = new_client_from_environment()
    started = time.perf_counter()
    count = 0
    for vault in connect.get_vaults():
        for summary in connect.get_items(vault.id):
            item = connect.get_item_by_id(summary.id, vault.id)
            password = next(f.value for f in item.fields if f.type == "CONCEALED")
            repo.create_secret(name_of(item.title), password)
            count += 1
    seconds = time.perf_counter() - started
    print('{"items": %d, "seconds": %f, "items_per_s": %f}' % (count, seconds, count / seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
