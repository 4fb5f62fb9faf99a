"""File attachments through the official Python SDK: listing, details, content, download."""

import pytest
from onepasswordconnectsdk.errors import FailedToRetrieveItemException
from onepasswordconnectsdk.models import File

from conftest import ID_RE


@pytest.fixture(scope="module")
def with_files(client, summaries):
    """(vault, summary, files) for every item that has attachments, found by listing."""
    found = []
    for vault, s in summaries:
        files = client.get_files(s.id, vault.id)
        if files:
            found.append((vault, s, files))
    assert found, "the demo seed has at least one item with file attachments"
    return found


def test_list_files(with_files):
    for vault, s, files in with_files:
        for f in files:
            assert isinstance(f, File)
            assert ID_RE.match(f.id), f.id
            assert f.name
            assert isinstance(f.size, int) and f.size > 0
            assert f.content_path == f"/v1/vaults/{vault.id}/items/{s.id}/files/{f.id}/content"
        assert len({f.id for f in files}) == len(files)


def test_get_file_details(client, with_files):
    vault, s, files = with_files[0]
    for listed in files:
        got = client.get_file(listed.id, s.id, vault.id)
        assert (got.id, got.name, got.size, got.content_path) == (
            listed.id, listed.name, listed.size, listed.content_path)


def test_file_content_by_content_path_and_by_ids(client, with_files):
    for vault, s, files in with_files:
        for f in files:
            via_path = client.get_file_content(f.id, s.id, vault.id, f.content_path)
            via_ids = client.get_file_content(f.id, s.id, vault.id)
            assert isinstance(via_path, bytes)
            assert len(via_path) == f.size
            assert via_path == via_ids


def test_download_file(client, with_files, tmp_path):
    vault, s, files = with_files[0]
    f = files[0]
    client.download_file(f.id, s.id, vault.id, str(tmp_path))
    written = tmp_path / f.name
    assert written.read_bytes() == client.get_file_content(f.id, s.id, vault.id)


def test_items_without_files_list_none(client, summaries, with_files):
    has_files = {s.id for _, s, _ in with_files}
    vault, s = next((v, s) for v, s in summaries if s.id not in has_files)
    assert client.get_files(s.id, vault.id) == []


def test_unknown_file_is_404(client, with_files):
    vault, s, _ = with_files[0]
    with pytest.raises(FailedToRetrieveItemException, match=r"Received 404\b"):
        client.get_file("zzzzzzzzzzzzzzzzzzzzzzzzzz", s.id, vault.id)
