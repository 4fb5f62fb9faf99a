// How the official JS SDK surfaces refusals: bad token, vault out of scope, read-only writes.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { OnePasswordConnect, ItemBuilder, ItemCategory, FieldType, FieldPurpose } = require("@1password/connect");
const { ConnectDev, rejectsWith } = require("./connect-dev");

function tampered(token) {
  const [header, payload, sig] = token.split(".");
  const i = Math.floor(sig.length / 2);
  const swapped = sig[i] === "A" ? "B" : "A";
  return [header, payload, sig.slice(0, i) + swapped + sig.slice(i + 1)].join(".");
}

function unsigned(token) {
  const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
  return [header, token.split(".")[1], ""].join(".");
}

function passwordItem(title) {
  return new ItemBuilder()
    .setCategory(ItemCategory.Password)
    .setTitle(title)
    .addField({
      label: "password",
      type: FieldType.Concealed,
      purpose: FieldPurpose.Password,
      generate: true,
      recipe: { length: 20 },
    })
    .build();
}

describe("errors", () => {
  let dev;
  let op;
  let vaults;
  const firstItem = {}; // vault id -> an item summary in it

  before(async () => {
    dev = await ConnectDev.start();
    op = OnePasswordConnect({ serverURL: dev.host, token: dev.token });
    vaults = (await op.listVaults()).sort((a, b) => a.name.localeCompare(b.name));
    assert.ok(vaults.length >= 2, "the demo seed has several vaults");
    for (const v of vaults.slice(0, 2)) {
      const items = await op.listItems(v.id);
      assert.ok(items.length > 0, `vault ${v.name} has items`);
      firstItem[v.id] = items[0];
    }
  });
  after(async () => {
    if (dev) await dev.stop();
  });

  for (const kind of ["garbage", "tampered signature", "alg none"]) {
    it(`rejects a ${kind} token with 401`, async () => {
      const token = { garbage: "not-a-jwt", "tampered signature": tampered(dev.token), "alg none": unsigned(dev.token) }[
        kind
      ];
      const bad = OnePasswordConnect({ serverURL: dev.host, token });
      const vault = vaults[0];

      const body = await rejectsWith(bad.listVaults(), 401);
      assert.match(body.message, /invalid/i);
      assert.ok(!JSON.stringify(body).includes(dev.token), "the error body does not echo the token");
      await rejectsWith(bad.getVaultById(vault.id), 401);
      await rejectsWith(bad.listItems(vault.id), 401);
      await rejectsWith(bad.getItemById(vault.id, firstItem[vault.id].id), 401);
      await rejectsWith(bad.createItem(vault.id, passwordItem("bad token")), 401);
    });
  }

  it("rejects an expired token with 401", async () => {
    const vault = vaults[0];
    const mintedAt = Date.now();
    const shortLived = OnePasswordConnect({ serverURL: dev.host, token: dev.mint([`${vault.name}:rw`], "3s") });
    assert.deepEqual(
      (await shortLived.listVaults()).map((v) => v.id),
      [vault.id],
      "valid before it expires",
    );

    // exp has one-second resolution: wait until it is surely in the past.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, mintedAt + 4500 - Date.now())));
    const body = await rejectsWith(shortLived.listVaults(), 401);
    assert.match(body.message, /invalid|expired/i);
    await rejectsWith(shortLived.listItems(vault.id), 401);
  });

  it("rejects a vault outside the token's scope with 403", async () => {
    const [mine, other] = vaults;
    const scoped = OnePasswordConnect({ serverURL: dev.host, token: dev.mint([`${mine.name}:rw`]) });

    assert.deepEqual(
      (await scoped.listVaults()).map((v) => v.id),
      [mine.id],
      "listing shows only granted vaults",
    );
    assert.equal((await scoped.getVaultById(mine.id)).id, mine.id);

    const body = await rejectsWith(scoped.getVaultById(other.id), 403);
    assert.match(body.message, /scope|access/);
    await rejectsWith(scoped.listItems(other.id), 403);
    await rejectsWith(scoped.getItemById(other.id, firstItem[other.id].id), 403);
    await rejectsWith(scoped.listFiles(other.id, firstItem[other.id].id), 403);
    await rejectsWith(scoped.createItem(other.id, passwordItem("out of scope")), 403);
    await rejectsWith(scoped.deleteItemById(other.id, firstItem[other.id].id), 403);
    // By title the vault is simply invisible to this token.
    const byTitle = await rejectsWith(scoped.getVaultByTitle(other.name), 404);
    assert.equal(byTitle.message, "No Vaults found with title");
    // The item is still there for a token that may see it.
    assert.equal((await op.getItemById(other.id, firstItem[other.id].id)).id, firstItem[other.id].id);
  });

  it("rejects writes with a read-only token with 401", async () => {
    const vault = vaults[0];
    const ro = OnePasswordConnect({ serverURL: dev.host, token: dev.mint([`${vault.name}:r`]) });
    const target = firstItem[vault.id];
    const original = await op.getItemById(vault.id, target.id);

    assert.equal((await ro.getItemById(vault.id, target.id)).id, target.id, "reading works");

    const title = `read-only write ${crypto.randomBytes(4).toString("hex")}`;
    let body = await rejectsWith(ro.createItem(vault.id, passwordItem(title)), 401);
    assert.match(body.message, /write access/);

    const changed = await ro.getItemById(vault.id, target.id);
    changed.title = title;
    body = await rejectsWith(ro.updateItem(vault.id, changed), 401);
    assert.match(body.message, /write access/);

    body = await rejectsWith(ro.deleteItemById(vault.id, target.id), 401);
    assert.match(body.message, /write access/);

    const after = await op.getItemById(vault.id, target.id);
    assert.deepEqual([after.title, after.version], [original.title, original.version], "nothing changed");
    assert.deepEqual(await op.listItemsByTitle(vault.id, title), []);
  });
});
