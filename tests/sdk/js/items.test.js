// Items through the official JS SDK: listing, get by id and title, create, update, delete.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { OnePasswordConnect, ItemBuilder, ItemCategory, FieldType, FieldPurpose, FullItem } = require(
  "@1password/connect",
);
const { ConnectDev, ID_RE, SEEDED_CATEGORIES, rejectsWith } = require("./connect-dev");

const unique = (prefix) => `${prefix} ${crypto.randomBytes(4).toString("hex")}`;

function newLogin(title) {
  return new ItemBuilder()
    .setCategory(ItemCategory.Login)
    .setTitle(title)
    .addTag("sdk-test")
    .addUrl({ href: "https://deploy.example.test", primary: true })
    .addField({ label: "username", value: "svc-deploy", purpose: FieldPurpose.Username })
    .addField({
      label: "password",
      type: FieldType.Concealed,
      purpose: FieldPurpose.Password,
      generate: true,
      recipe: { length: 24, characterSets: ["LETTERS", "DIGITS"], excludeCharacters: "0O1lI" },
    })
    .addField({
      label: "api key",
      type: FieldType.Concealed,
      sectionName: "Deployment",
      generate: true,
      recipe: { length: 40, characterSets: ["LETTERS", "DIGITS", "SYMBOLS"] },
    })
    .build();
}

function field(item, label) {
  const found = (item.fields || []).filter((f) => f.label === label);
  assert.equal(found.length, 1, `one field labelled ${label}, got ${(item.fields || []).map((f) => f.label)}`);
  return found[0];
}

describe("items", () => {
  let dev;
  let op;
  let vaults;
  let summaries; // [{vault, item}]
  let vault; // the vault the write tests use

  before(async () => {
    dev = await ConnectDev.start();
    op = OnePasswordConnect({ serverURL: dev.host, token: dev.token });
    vaults = (await op.listVaults()).sort((a, b) => a.name.localeCompare(b.name));
    summaries = [];
    for (const v of vaults) {
      for (const item of await op.listItems(v.id)) summaries.push({ vault: v, item });
    }
    vault = vaults[0];
  });
  after(async () => {
    if (dev) await dev.stop();
  });

  it("lists item summaries with their vault, version and timestamps", () => {
    assert.ok(summaries.length > 0, "the demo seed has items");
    for (const { vault: v, item } of summaries) {
      assert.match(item.id, ID_RE);
      assert.ok(item.title);
      assert.equal(item.vault.id, v.id);
      assert.ok(Number.isInteger(item.version) && item.version >= 1);
      assert.ok(item.createdAt instanceof Date && !Number.isNaN(item.createdAt.getTime()));
      assert.ok(item.updatedAt instanceof Date && !Number.isNaN(item.updatedAt.getTime()));
    }
    const categories = new Set(summaries.map((s) => s.item.category));
    for (const c of SEEDED_CATEGORIES) assert.ok(categories.has(c), `seed has a ${c} item`);
    for (const v of vaults) {
      assert.equal(v.items, summaries.filter((s) => s.vault.id === v.id).length, `item count of ${v.name}`);
    }
  });

  it("gets an item by id and by title", async () => {
    const { vault: v, item: s } = summaries.find((x) => x.item.category === "LOGIN" && !ID_RE.test(x.item.title));
    const byId = await op.getItemById(v.id, s.id);
    assert.ok(byId instanceof FullItem);
    assert.deepEqual([byId.id, byId.title, byId.category, byId.version], [s.id, s.title, s.category, s.version]);
    assert.equal(byId.vault.id, v.id);
    assert.ok(byId.fields.some((f) => f.purpose === "PASSWORD" && f.value));

    assert.equal((await op.getItemByTitle(v.id, s.title)).id, s.id);
    assert.equal((await op.getItem(v.id, s.title)).id, s.id);
    assert.equal((await op.getItem(v.id, s.id)).id, s.id);
    const listed = await op.listItemsByTitle(v.id, s.title);
    assert.deepEqual(
      listed.map((i) => i.id),
      [s.id],
    );
  });

  it("finds the item whose title looks like an id by title, and 404s it as an id", async () => {
    const hit = summaries.find((x) => ID_RE.test(x.item.title) && x.item.title !== x.item.id);
    assert.ok(hit, "the demo seed has an item whose title is a 26-char lowercase id-like string");
    const { vault: v, item: s } = hit;

    const byTitle = await op.getItemByTitle(v.id, s.title);
    assert.equal(byTitle.id, s.id);
    assert.equal(byTitle.title, s.title);
    // The JS SDK treats an id-shaped query as an id and does not fall back to a title search:
    // it surfaces the server's 404 (not a 400) as the rejection body.
    const body = await rejectsWith(op.getItem(v.id, s.title), 404);
    assert.match(body.message, /not found/);
  });

  it("searches titles with `co`", async () => {
    const { vault: v, item: s } = summaries.find((x) => !ID_RE.test(x.item.title) && x.item.title.length >= 4);
    const needle = s.title.slice(1, -1);
    const found = await op.listItemsByTitleContains(v.id, needle);
    assert.ok(found.some((i) => i.id === s.id));
    for (const i of found) assert.ok(i.title.toLowerCase().includes(needle.toLowerCase()), i.title);
  });

  it("creates an item with a generated password", async () => {
    const before = await op.getVaultById(vault.id);
    const title = unique("sdk js create");
    const created = await op.createItem(vault.id, newLogin(title));

    assert.ok(created instanceof FullItem);
    assert.match(created.id, ID_RE);
    assert.equal(created.title, title);
    assert.equal(created.category, "LOGIN");
    assert.equal(created.vault.id, vault.id);
    assert.equal(created.version, 1);
    assert.deepEqual(created.tags, ["sdk-test"]);
    assert.equal(created.urls[0].href, "https://deploy.example.test");

    const password = field(created, "password");
    assert.equal(password.purpose, "PASSWORD");
    assert.match(password.value, /^[A-Za-z0-9]{24}$/, "recipe: 24 letters and digits");
    assert.doesNotMatch(password.value, /[0O1lI]/, "recipe's excludeCharacters honoured");
    assert.ok(typeof password.entropy === "number" && password.entropy > 0);
    assert.ok(password.id, "the server assigns field ids");

    const apiKey = field(created, "api key");
    assert.equal(apiKey.value.length, 40);
    assert.ok(apiKey.section && apiKey.section.id, "the field keeps its section");
    assert.ok(
      created.sections.some((s) => s.id === apiKey.section.id && s.label === "Deployment"),
      "the builder's section is kept",
    );
    assert.equal(field(created, "username").value, "svc-deploy");

    const after = await op.getVaultById(vault.id);
    assert.equal(after.items, before.items + 1);
    assert.ok(after.contentVersion > before.contentVersion);

    const again = await op.getItemById(vault.id, created.id);
    assert.equal(field(again, "password").value, password.value, "generated once, then stored");
    assert.equal(again.version, 1);
  });

  it("gets a created item by title", async () => {
    const title = unique("sdk js by-title");
    const created = await op.createItem(vault.id, newLogin(title));
    assert.equal((await op.getItemByTitle(vault.id, title)).id, created.id);
    assert.equal((await op.getItem(vault.id, title)).id, created.id);
  });

  it("updates an item", async () => {
    const created = await op.createItem(vault.id, newLogin(unique("sdk js update")));
    const item = await op.getItemById(vault.id, created.id);
    const generated = field(item, "password").value;
    const before = await op.getVaultById(vault.id);

    const newTitle = unique("sdk js updated");
    item.title = newTitle;
    item.tags = ["sdk-test", "updated"];
    field(item, "username").value = "svc-rotated";
    item.fields.push({ type: FieldType.String, purpose: FieldPurpose.Empty, label: "environment", value: "staging" });

    const updated = await op.updateItem(vault.id, item);
    assert.equal(updated.id, created.id);
    assert.equal(updated.title, newTitle);
    assert.deepEqual([...updated.tags].sort(), ["sdk-test", "updated"]);

    const fetched = await op.getItemById(vault.id, created.id);
    assert.equal(fetched.title, newTitle);
    assert.equal(fetched.version, 2);
    assert.equal(field(fetched, "username").value, "svc-rotated");
    assert.equal(field(fetched, "password").value, generated, "an update without generate keeps the value");
    const env = field(fetched, "environment");
    assert.equal(env.value, "staging");
    assert.ok(env.id, "the new field gets a server id");
    assert.ok((await op.getVaultById(vault.id)).contentVersion > before.contentVersion);
    assert.equal((await op.getItemByTitle(vault.id, newTitle)).id, created.id);
  });

  it("deletes an item by id and by title", async () => {
    const title = unique("sdk js delete");
    const created = await op.createItem(vault.id, newLogin(title));
    const before = await op.getVaultById(vault.id);

    await op.deleteItemById(vault.id, created.id);
    const body = await rejectsWith(op.getItemById(vault.id, created.id), 404);
    assert.match(body.message, /not found/);
    assert.ok(!(await op.listItems(vault.id)).some((i) => i.id === created.id));
    const noTitle = await rejectsWith(op.getItemByTitle(vault.id, title), 404);
    assert.equal(noTitle.message, "No Items found with title");
    const after = await op.getVaultById(vault.id);
    assert.equal(after.items, before.items - 1);
    assert.ok(after.contentVersion > before.contentVersion);
    await rejectsWith(op.deleteItemById(vault.id, created.id), 404);

    const other = unique("sdk js delete-by-title");
    const second = await op.createItem(vault.id, newLogin(other));
    await op.deleteItem(vault.id, other);
    await rejectsWith(op.getItemById(vault.id, second.id), 404);
  });
});
