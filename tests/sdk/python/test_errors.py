"""How the official Python SDK surfaces refusals: bad token, vault out of scope, read-only writes."""

import base64
import json
import re
import time
import uuid

import pytest
from onepasswordconnectsdk import new_client
from onepasswordconnectsdk.errors import FailedToRetrieveItemException, FailedToRetrieveVaultException
from onepasswordconnectsdk.models import Field, Item


def tampered(token: str) -> str:
    """The same JWT with one signature character changed."""
    header, payload, sig = token.split(".")
    i = len(sig) // 2
    swapped = "A" if sig[i] != "A" else "B"
    return ".".join([header, payload, sig[:i] + swapped + sig[i + 1:]])


def unsigned(token: str) -> str:
    """The same claims re-sent as an `alg: none` JWT with no signature."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    return ".".join([header.decode(), token.split(".")[1], ""])


def message_of(err: Exception) -> str:
    """The server's `message`, as the SDK embeds it in its exception text."""
    text = str(err)
    marker = "with message"
    assert marker in text, text
    message = text.split(marker, 1)[1].lstrip(": ").strip()
    assert message and message != "None", f"the error body had no message: {text}"
    return message


@pytest.fixture(scope="module")
def two_vaults(vaults):
    return vaults[0], vaults[1]


@pytest.fixture(scope="module")
def item_in(client, summaries):
    def pick(vault):
        return next(s for v, s in summaries if v.id == vault.id)
    return pick


@pytest.mark.parametrize("kind", ["garbage", "tampered signature", "alg none"])
def test_bad_token_is_401(server, vaults, item_in, kind):
    token = {"garbage": "not-a-jwt", "tampered signature": tampered(server.token),
             "alg none": unsigned(server.token)}[kind]
    bad = new_client(server.host, token)
    vault = vaults[0]

    with pytest.raises(FailedToRetrieveVaultException, match=r"Received 401\b") as err:
        bad.get_vaults()
    assert "invalid" in message_of(err.value).lower()
    assert server.token not in str(err.value)

    with pytest.raises(FailedToRetrieveVaultException, match=r"Received 401\b"):
        bad.get_vault(vault.id)
    with pytest.raises(FailedToRetrieveItemException, match=r"Received 401\b"):
        bad.get_items(vault.id)
    with pytest.raises(FailedToRetrieveItemException) as item_err:
        bad.get_item_by_id(item_in(vault).id, vault.id)
    assert item_err.value.status_code == 401


def test_expired_token_is_401(server, vaults):
    vault = vaults[0]
    minted_at = time.monotonic()
    token = server.mint(f"{vault.name}:rw", expires_in="3s")
    short_lived = new_client(server.host, token)
    assert [v.id for v in short_lived.get_vaults()] == [vault.id], "valid before it expires"

    # exp has one-second resolution: wait until it is surely in the past.
    time.sleep(max(0.0, minted_at + 4.5 - time.monotonic()))
    with pytest.raises(FailedToRetrieveVaultException, match=r"Received 401\b") as err:
        short_lived.get_vaults()
    message = message_of(err.value)
    assert re.search(r"invalid|expired", message, re.I), message
    with pytest.raises(FailedToRetrieveItemException, match=r"Received 401\b"):
        short_lived.get_items(vault.id)


def test_vault_out_of_scope_is_403(server, two_vaults, item_in):
    mine, other = two_vaults
    scoped = new_client(server.host, server.mint(f"{mine.name}:rw"))

    assert [v.id for v in scoped.get_vaults()] == [mine.id], "listing shows only granted vaults"
    assert scoped.get_vault(mine.id).id == mine.id
    assert scoped.get_items(mine.id), "the granted vault stays readable"

    with pytest.raises(FailedToRetrieveVaultException, match=r"Received 403\b") as err:
        scoped.get_vault(other.id)
    message = message_of(err.value)
    assert "scope" in message or "access" in message, message

    with pytest.raises(FailedToRetrieveItemException, match=r"Received 403\b"):
        scoped.get_items(other.id)
    with pytest.raises(FailedToRetrieveItemException) as item_err:
        scoped.get_item_by_id(item_in(other).id, other.id)
    assert item_err.value.status_code == 403
    # get_item does not fall back to a title search on 403.
    with pytest.raises(FailedToRetrieveItemException) as again:
        scoped.get_item(item_in(other).id, other.id)
    assert again.value.status_code == 403
    with pytest.raises(FailedToRetrieveItemException, match=r"Received 403\b"):
        scoped.create_item(other.id, Item(title="out of scope", category="PASSWORD",
                                          fields=[Field(type="CONCEALED", purpose="PASSWORD",
                                                        label="password", value="x")]))
    # By name, the vault is simply not visible to this token.
    with pytest.raises(FailedToRetrieveItemException, match=r"Found 0 vaults"):
        scoped.get_vault_by_title(other.name)


def test_read_only_token_cannot_write(server, client, two_vaults, item_in):
    vault = two_vaults[0]
    ro = new_client(server.host, server.mint(f"{vault.name}:r"))
    target = item_in(vault)
    original = client.get_item_by_id(target.id, vault.id)

    # Reading works.
    assert ro.get_item_by_id(target.id, vault.id).id == target.id

    title = f"read-only write {uuid.uuid4().hex[:8]}"
    with pytest.raises(FailedToRetrieveItemException, match=r"Received 401\b") as err:
        ro.create_item(vault.id, Item(title=title, category="PASSWORD",
                                      fields=[Field(type="CONCEALED", purpose="PASSWORD",
                                                    label="password", generate=True)]))
    assert "write access" in message_of(err.value)

    changed = ro.get_item_by_id(target.id, vault.id)
    changed.title = title
    with pytest.raises(FailedToRetrieveItemException, match=r"Received 401\b") as err:
        ro.update_item(changed.id, vault.id, changed)
    assert "write access" in message_of(err.value)

    with pytest.raises(FailedToRetrieveItemException, match=r"Received 401\b") as err:
        ro.delete_item(target.id, vault.id)
    assert "write access" in message_of(err.value)

    # Nothing changed.
    after = client.get_item_by_id(target.id, vault.id)
    assert (after.title, after.version) == (original.title, original.version)
    assert client.get_items(vault.id, f'title eq "{title}"') == []
