"""Items through the official Python SDK: listing, get by id and title, create, update, delete."""

import re
import uuid

import pytest
from onepasswordconnectsdk import load_dict
from onepasswordconnectsdk.errors import FailedToRetrieveItemException
from onepasswordconnectsdk.models import Field, FieldSection, GeneratorRecipe, Item, Section, SummaryItem

from conftest import ID_RE, SEEDED_CATEGORIES

DEFAULT_SETS = re.compile(r"^[A-Za-z0-9!-/:-@\[-`{-~]+$")  # letters, digits, ASCII symbols


@pytest.fixture(scope="module")
def vault(vaults):
    """The vault the write tests use: any vault the read-write token can see."""
    return vaults[0]


def new_login(title: str) -> Item:
    return Item(
        title=title,
        category="LOGIN",
        tags=["sdk-test"],
        fields=[
            Field(type="STRING", purpose="USERNAME", label="username", value="svc-deploy"),
            Field(
                type="CONCEALED",
                purpose="PASSWORD",
                label="password",
                generate=True,
                recipe=GeneratorRecipe(length=24, character_sets=["LETTERS", "DIGITS"],
                                       exclude_characters="0O1lI"),
            ),
            # No recipe: the server's default, 32 characters of letters, digits and symbols.
            Field(type="CONCEALED", label="api key", generate=True),
        ],
    )


def field(item: Item, label: str) -> Field:
    matches = [f for f in item.fields or [] if f.label == label]
    assert len(matches) == 1, f"expected one field labelled {label!r}, got {[f.label for f in item.fields or []]}"
    return matches[0]


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def test_list_items_returns_summaries(summaries, vaults):
    assert summaries, "the demo seed has items"
    vault_ids = {v.id for v in vaults}
    for vault, s in summaries:
        assert isinstance(s, SummaryItem)
        assert ID_RE.match(s.id), s.id
        assert s.title
        assert s.vault is not None and s.vault.id == vault.id and s.vault.id in vault_ids
        assert isinstance(s.version, int) and s.version >= 1
        assert s.created_at is not None and s.updated_at is not None
    categories = {s.category for _, s in summaries}
    assert SEEDED_CATEGORIES <= categories, f"missing categories: {SEEDED_CATEGORIES - categories}"
    for vault in vaults:
        assert vault.items == sum(1 for v, _ in summaries if v.id == vault.id), vault.name


def test_get_item_by_id_and_by_title(client, summaries):
    vault, s = next((v, s) for v, s in summaries if s.category == "LOGIN" and not ID_RE.match(s.title))
    by_id = client.get_item_by_id(s.id, vault.id)
    assert isinstance(by_id, Item)
    assert (by_id.id, by_id.title, by_id.category, by_id.version) == (s.id, s.title, s.category, s.version)
    assert by_id.vault.id == vault.id
    assert by_id.fields, "a full item carries its fields"
    assert any(f.purpose == "PASSWORD" and f.value for f in by_id.fields)

    by_title = client.get_item_by_title(s.title, vault.id)
    assert by_title.id == s.id
    # get_item picks id or title by the 26-char rule.
    assert client.get_item(s.title, vault.id).id == s.id
    assert client.get_item(s.id, vault.id).id == s.id


def test_title_that_looks_like_an_id(client, summaries):
    found = [(v, s) for v, s in summaries if ID_RE.match(s.title) and s.title != s.id]
    assert found, "the demo seed has an item whose title is a 26-char lowercase id-like string"
    vault, s = found[0]
    # The SDK first GETs /items/<title>; the server must answer 404 (not 400) so the SDK
    # falls back to the title filter.
    with pytest.raises(FailedToRetrieveItemException) as err:
        client.get_item_by_id(s.title, vault.id)
    assert err.value.status_code == 404
    item = client.get_item(s.title, vault.id)
    assert item.id == s.id and item.title == s.title
    assert client.get_item_by_title(s.title, vault.id).id == s.id


def test_filtered_listing(client, summaries):
    vault, s = next((v, s) for v, s in summaries if not ID_RE.match(s.title))
    exact = client.get_items(vault.id, f'title eq "{s.title}"')
    assert [x.id for x in exact] == [s.id]
    assert client.get_items(vault.id, 'title eq "no item has this title"') == []


def test_create_item_with_generated_password(client, vault):
    before = client.get_vault(vault.id)
    title = unique("sdk py create")
    created = client.create_item(vault.id, new_login(title))

    assert isinstance(created, Item)
    assert ID_RE.match(created.id), created.id
    assert created.title == title
    assert created.category == "LOGIN"
    assert created.vault.id == vault.id
    assert created.version == 1
    assert created.tags == ["sdk-test"]
    assert created.created_at is not None and created.updated_at is not None

    password = field(created, "password")
    assert password.purpose == "PASSWORD"
    assert re.fullmatch(r"[A-Za-z0-9]{24}", password.value or ""), "recipe: 24 letters/digits"
    assert not set("0O1lI") & set(password.value), "recipe's excludeCharacters honoured"
    assert isinstance(password.entropy, float) and password.entropy > 0
    assert password.id, "the server assigns field ids"

    api_key = field(created, "api key")
    assert len(api_key.value or "") == 32, "default recipe is 32 characters"
    assert DEFAULT_SETS.match(api_key.value)
    assert field(created, "username").value == "svc-deploy"

    after = client.get_vault(vault.id)
    assert after.items == before.items + 1
    assert after.content_version > before.content_version

    # Generated once: reading it back gives the same secret.
    again = client.get_item_by_id(created.id, vault.id)
    assert field(again, "password").value == password.value
    assert again.version == 1


def test_get_created_item_by_title(client, vault):
    title = unique("sdk py by-title")
    created = client.create_item(vault.id, new_login(title))
    assert client.get_item_by_title(title, vault.id).id == created.id
    assert client.get_item(title, vault.name).id == created.id


def test_load_dict_reads_fields_by_item_title(client, vault):
    # The SDK's config helper: fetch an item by title and pick fields by "section.label".
    title = unique("sdk py config")
    item = new_login(title)
    item.sections = [Section(id="deployment", label="Deployment")]
    item.fields.append(Field(type="STRING", label="region", value="eu-west-1",
                             section=FieldSection(id="deployment")))
    created = client.create_item(vault.id, item)

    values = load_dict(client, {
        "user": {"opitem": title, "opfield": ".username", "opvault": vault.id},
        "password": {"opitem": title, "opfield": ".password", "opvault": vault.id},
        "region": {"opitem": title, "opfield": "Deployment.region", "opvault": vault.id},
    })
    assert values == {
        "user": "svc-deploy",
        "password": field(created, "password").value,
        "region": "eu-west-1",
    }


def test_update_item(client, vault):
    created = client.create_item(vault.id, new_login(unique("sdk py update")))
    item = client.get_item_by_id(created.id, vault.id)
    generated = field(item, "password").value

    new_title = unique("sdk py updated")
    item.title = new_title
    item.tags = ["sdk-test", "updated"]
    field(item, "username").value = "svc-rotated"
    item.fields.append(Field(type="STRING", label="environment", value="staging"))
    before = client.get_vault(vault.id)

    updated = client.update_item(item.id, vault.id, item)
    assert updated.id == created.id
    assert updated.title == new_title
    assert sorted(updated.tags) == ["sdk-test", "updated"]

    fetched = client.get_item_by_id(created.id, vault.id)
    assert fetched.title == new_title
    assert fetched.version == 2
    assert field(fetched, "username").value == "svc-rotated"
    assert field(fetched, "password").value == generated, "an update without generate keeps the value"
    env = field(fetched, "environment")
    assert env.value == "staging" and env.id, "the new field gets a server id"
    assert client.get_vault(vault.id).content_version > before.content_version
    assert [s.id for s in client.get_items(vault.id, f'title eq "{new_title}"')] == [created.id]


def test_delete_item(client, vault):
    title = unique("sdk py delete")
    created = client.create_item(vault.id, new_login(title))
    before = client.get_vault(vault.id)

    assert client.delete_item(created.id, vault.id) is None

    with pytest.raises(FailedToRetrieveItemException) as err:
        client.get_item_by_id(created.id, vault.id)
    assert err.value.status_code == 404
    assert "not found" in str(err.value)
    assert created.id not in {s.id for s in client.get_items(vault.id)}
    with pytest.raises(FailedToRetrieveItemException, match=r"Found 0 items"):
        client.get_item_by_title(title, vault.id)
    after = client.get_vault(vault.id)
    assert after.items == before.items - 1
    assert after.content_version > before.content_version

    with pytest.raises(FailedToRetrieveItemException, match=r"Received 404\b"):
        client.delete_item(created.id, vault.id)
