// File attachments through the official JS SDK: listing, details and content.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { OnePasswordConnect } = require("@1password/connect");
const { ConnectDev, ID_RE, rejectsWith } = require("./connect-dev");

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe("files", () => {
  let dev;
  let op;
  let summaries; // [{vault, item}]
  let withFiles; // [{vault, item, files}]

  before(async () => {
    dev = await ConnectDev.start();
    op = OnePasswordConnect({ serverURL: dev.host, token: dev.token });
    summaries = [];
    withFiles = [];
    for (const vault of await op.listVaults()) {
      for (const item of await op.listItems(vault.id)) {
        summaries.push({ vault, item });
        const files = await op.listFiles(vault.id, item.id);
        if (files.length) withFiles.push({ vault, item, files });
      }
    }
  });
  after(async () => {
    if (dev) await dev.stop();
  });

  it("lists the files of an item", () => {
    assert.ok(withFiles.length > 0, "the demo seed has at least one item with file attachments");
    for (const { vault, item, files } of withFiles) {
      for (const f of files) {
        assert.match(f.id, ID_RE);
        assert.ok(f.name);
        assert.ok(Number.isInteger(f.size) && f.size > 0);
        assert.equal(f.content_path, `/v1/vaults/${vault.id}/items/${item.id}/files/${f.id}/content`);
      }
    }
  });

  it("lists files by vault and item title", async () => {
    const { vault, item, files } = withFiles.find((x) => !ID_RE.test(x.item.title));
    const byTitle = await op.listFiles(vault.name, item.title);
    assert.deepEqual(
      byTitle.map((f) => f.id),
      files.map((f) => f.id),
    );
  });

  it("shows the files on the full item", async () => {
    for (const { vault, item, files } of withFiles) {
      const full = await op.getItemById(vault.id, item.id);
      assert.deepEqual(
        (full.files || []).map((f) => [f.id, f.name, f.size]),
        files.map((f) => [f.id, f.name, f.size]),
      );
    }
  });

  it("gets file details by id", async () => {
    const { vault, item, files } = withFiles[0];
    for (const listed of files) {
      const got = await op.getFileById(vault.id, item.id, listed.id);
      assert.deepEqual(
        [got.id, got.name, got.size, got.content_path],
        [listed.id, listed.name, listed.size, listed.content_path],
      );
    }
  });

  it("reads file content as a string and as a stream", async () => {
    for (const { vault, item, files } of withFiles) {
      for (const f of files) {
        const bytes = await collect(await op.getFileContentStream(vault.id, item.id, f.id));
        assert.equal(bytes.length, f.size);
        const text = await op.getFileContent(vault.id, item.id, f.id);
        assert.equal(text, bytes.toString());
      }
    }
  });

  it("lists no files for an item without attachments", async () => {
    const ids = new Set(withFiles.map((x) => x.item.id));
    const { vault, item } = summaries.find((x) => !ids.has(x.item.id));
    assert.deepEqual(await op.listFiles(vault.id, item.id), []);
  });

  it("rejects an unknown file id with the server's 404 body", async () => {
    const { vault, item } = withFiles[0];
    const body = await rejectsWith(op.getFileById(vault.id, item.id, "zzzzzzzzzzzzzzzzzzzzzzzzzz"), 404);
    assert.match(body.message, /not found/);
  });
});
