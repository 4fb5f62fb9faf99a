"""Vault listing and lookup by id, name and title through the official Python SDK."""

import pytest
from onepasswordconnectsdk.errors import FailedToRetrieveItemException, FailedToRetrieveVaultException
from onepasswordconnectsdk.models import Vault

from conftest import ID_RE


def test_list_vaults_returns_sdk_models(vaults):
    for vault in vaults:
        assert isinstance(vault, Vault)
        assert ID_RE.match(vault.id), vault.id
        assert vault.name
        # The SDK's setter already rejects any other type; a missing type would be None.
        assert vault.type in ("USER_CREATED", "PERSONAL", "EVERYONE", "TRANSFER")
        assert isinstance(vault.items, int) and vault.items >= 0
        assert isinstance(vault.content_version, int) and vault.content_version >= 1
        assert vault.created_at is not None and vault.updated_at is not None
    assert len({v.id for v in vaults}) == len(vaults), "vault ids must be unique"
    assert len({v.name for v in vaults}) == len(vaults), "demo vault names should be unique"


def test_get_vault_by_id_matches_listing(client, vaults):
    for listed in vaults:
        got = client.get_vault(listed.id)
        assert got.id == listed.id
        assert got.name == listed.name
        assert got.items == listed.items
        assert got.content_version == listed.content_version


def test_get_vault_by_title_uses_name_filter(client, vaults):
    # The Python SDK sends `filter=name eq "<name>"`.
    for listed in vaults:
        got = client.get_vault_by_title(listed.name)
        assert got.id == listed.id
        assert got.name == listed.name


def test_vault_name_filter_is_case_insensitive(client, vaults):
    listed = vaults[0]
    got = client.get_vault_by_title(listed.name.swapcase())
    assert got.id == listed.id


def test_unknown_vault_name_finds_nothing(client):
    # The SDK raises its *item* exception when the filtered list is not exactly one vault.
    with pytest.raises(FailedToRetrieveItemException, match=r"Found 0 vaults"):
        client.get_vault_by_title("no such vault anywhere")


def test_unknown_vault_id_is_404(client):
    with pytest.raises(FailedToRetrieveVaultException, match=r"Received 404\b"):
        client.get_vault("zzzzzzzzzzzzzzzzzzzzzzzzzz")


def test_item_lookup_accepts_vault_name(client, vaults, summaries):
    # get_item resolves a vault given by name before fetching the item.
    vault, summary = next((v, s) for v, s in summaries if not ID_RE.match(s.title))
    item = client.get_item(summary.id, vault.name)
    assert item.id == summary.id
    assert item.vault.id == vault.id
