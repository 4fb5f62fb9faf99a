// Vault listing and lookup by id and title through the official JS SDK.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { OnePasswordConnect, Vault } = require("@1password/connect");
const { ConnectDev, ID_RE, rejectsWith } = require("./connect-dev");

describe("vaults", () => {
  let dev;
  let op;
  let vaults;

  before(async () => {
    dev = await ConnectDev.start();
    op = OnePasswordConnect({ serverURL: dev.host, token: dev.token });
    vaults = (await op.listVaults()).sort((a, b) => a.name.localeCompare(b.name));
  });
  after(async () => {
    if (dev) await dev.stop();
  });

  it("lists vaults as SDK models", () => {
    assert.ok(vaults.length >= 2, "the demo seed has several vaults");
    for (const v of vaults) {
      assert.ok(v instanceof Vault);
      assert.match(v.id, ID_RE);
      assert.ok(v.name);
      assert.ok(Object.values(Vault.TypeEnum).includes(v.type), `vault type ${v.type}`);
      assert.equal(typeof v.items, "number");
      assert.equal(typeof v.contentVersion, "number");
      assert.ok(v.createdAt instanceof Date && !Number.isNaN(v.createdAt.getTime()));
      assert.ok(v.updatedAt instanceof Date && !Number.isNaN(v.updatedAt.getTime()));
    }
    assert.equal(new Set(vaults.map((v) => v.id)).size, vaults.length);
  });

  it("gets each vault by id", async () => {
    for (const listed of vaults) {
      const got = await op.getVaultById(listed.id);
      assert.equal(got.id, listed.id);
      assert.equal(got.name, listed.name);
      assert.equal(got.items, listed.items);
      assert.equal(got.contentVersion, listed.contentVersion);
      // getVault picks id or title by the 26-char rule.
      assert.equal((await op.getVault(listed.id)).id, listed.id);
    }
  });

  it("gets each vault by title (filter=title eq)", async () => {
    for (const listed of vaults) {
      const byTitle = await op.getVaultByTitle(listed.name);
      assert.equal(byTitle.id, listed.id);
      assert.equal((await op.getVault(listed.name)).id, listed.id);
      const list = await op.listVaultsByTitle(listed.name);
      assert.deepEqual(
        list.map((v) => v.id),
        [listed.id],
      );
    }
  });

  it("matches vault titles case-insensitively", async () => {
    const listed = vaults[0];
    const upper = listed.name.toUpperCase() === listed.name ? listed.name.toLowerCase() : listed.name.toUpperCase();
    assert.equal((await op.getVaultByTitle(upper)).id, listed.id);
  });

  it("rejects an unknown title with the SDK's 404 body", async () => {
    const body = await rejectsWith(op.getVaultByTitle("no such vault anywhere"), 404);
    assert.equal(body.message, "No Vaults found with title");
  });

  it("rejects an unknown vault id with the server's 404 body", async () => {
    const body = await rejectsWith(op.getVaultById("zzzzzzzzzzzzzzzzzzzzzzzzzz"), 404);
    assert.match(body.message, /not found/);
  });
});
