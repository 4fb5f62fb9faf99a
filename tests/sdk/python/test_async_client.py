"""The official Python SDK's async client (`new_client(..., is_async=True)`) against connect-dev."""

import asyncio
import re
import uuid

import pytest
from onepasswordconnectsdk import new_client
from onepasswordconnectsdk.async_client import AsyncClient
from onepasswordconnectsdk.errors import FailedToRetrieveItemException
from onepasswordconnectsdk.models import Field, GeneratorRecipe, Item

from conftest import ID_RE


def run(coro_fn, host, token):
    """Runs coro_fn(client) on a fresh async client and closes its session afterwards."""

    async def main():
        client = new_client(host, token, is_async=True)
        assert isinstance(client, AsyncClient)
        try:
            return await coro_fn(client)
        finally:
            await client.session.aclose()

    return asyncio.run(main())


def test_async_round_trip(server):
    title = f"sdk py async {uuid.uuid4().hex[:8]}"

    async def scenario(client):
        vaults = await client.get_vaults()
        assert len(vaults) >= 2
        vault = sorted(vaults, key=lambda v: v.name)[0]
        assert (await client.get_vault_by_title(vault.name)).id == vault.id

        created = await client.create_item(vault.id, Item(
            title=title,
            category="PASSWORD",
            fields=[Field(type="CONCEALED", purpose="PASSWORD", label="password", generate=True,
                          recipe=GeneratorRecipe(length=16, character_sets=["DIGITS"]))],
        ))
        assert ID_RE.match(created.id) and created.version == 1
        value = next(f.value for f in created.fields if f.purpose == "PASSWORD")
        assert re.fullmatch(r"[0-9]{16}", value or "")

        fetched = await client.get_item(title, vault.name)
        assert fetched.id == created.id
        fetched.title = title + " (renamed)"
        updated = await client.update_item(fetched.id, vault.id, fetched)
        assert updated.title == title + " (renamed)"
        assert (await client.get_item_by_id(created.id, vault.id)).version == 2

        await client.delete_item(created.id, vault.id)
        with pytest.raises(FailedToRetrieveItemException) as err:
            await client.get_item_by_id(created.id, vault.id)
        assert err.value.status_code == 404

    run(scenario, server.host, server.token)


def test_async_files(server):
    async def scenario(client):
        found = 0
        for vault in await client.get_vaults():
            for s in await client.get_items(vault.id):
                for f in await client.get_files(s.id, vault.id):
                    assert (await client.get_file(f.id, s.id, vault.id)).name == f.name
                    content = await client.get_file_content(f.id, s.id, vault.id, f.content_path)
                    assert len(content) == f.size
                    found += 1
        assert found, "the demo seed has file attachments"

    run(scenario, server.host, server.token)


def test_async_read_only_write_is_401(server, vaults):
    vault = vaults[0]
    token = server.mint(f"{vault.name}:r")

    async def scenario(client):
        assert await client.get_items(vault.id)
        with pytest.raises(FailedToRetrieveItemException, match=r"Received 401\b.*write access"):
            await client.create_item(vault.id, Item(
                title="read-only async", category="PASSWORD",
                fields=[Field(type="CONCEALED", purpose="PASSWORD", label="password", generate=True)]))

    run(scenario, server.host, token)
