// The portal's layout and the credential pages in a real headless Chromium: every page at a
// 390 px phone and a 1280 px desktop without horizontal overflow, the phone header on one
// line, the dark scheme, the credential list's search, filters and pages, editing a
// credential's audiences, token lifetime, rate limit and expiry, and custom claims read-only
// or editable as the server's --org-editable-claim says.
//
// Started by e2e/run.sh after portal.test.js, once more credentials than one page holds were
// created through the CLI (BATCH of them, named "Batch N", every fifth in production, and
// "Claims demo" with the claims tier and tenant, the server allowing org admins to edit
// tenant).
"use strict";

const assert = require("node:assert/strict");
const path = require("node:path");
const { chromium } = require("playwright-core");

const BASE = process.env.BASE;
const BATCH = Number(process.env.BATCH || "25");
const ADMIN = { email: "admin@acme.test", password: process.env.ADMIN_PASSWORD };
const VIEWER = { email: "viewer@acme.test", password: process.env.VIEWER_PASSWORD };
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

// As in portal.test.js: NAME.tmp.png (ignored by git) unless TOKENMINT_UPDATE_SCREENSHOTS=1.
const SHOT_SUFFIX = process.env.TOKENMINT_UPDATE_SCREENSHOTS === "1" ? ".png" : ".tmp.png";

async function shot(page, name) {
  if (!process.env.SCREENSHOTS) return;
  await page.screenshot({ path: path.join(process.env.SCREENSHOTS, `${name}${SHOT_SUFFIX}`), fullPage: true });
}

let step = "start";
function log(s) {
  step = s;
  console.log(`e2e: ${s}`);
}

async function signIn(page, who) {
  await page.goto(`${BASE}/portal/sign-in`);
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/portal\/credentials$/);
}

/// The boxes whose content must fit inside them: the page's main column, its cards, the
/// tables' scroll boxes and the navigation.
const CONTAINERS = "main, .card, .table-card, .table-scroll, nav.sidenav, nav.sidenav ul, .kv, .actions";

/// Fails when the page scrolls sideways, or when content sticks out of one of its containers
/// (a list wider than its card, which its card then clips or scrolls).
async function assertFits(page, what) {
  const over = await page.evaluate(() => {
    const s = document.scrollingElement;
    return s.scrollWidth - s.clientWidth;
  });
  assert.ok(over <= 0, `${what}: ${over}px of horizontal overflow`);
  const inside = await page.evaluate((selector) => {
    const name = (el) => `${el.tagName.toLowerCase()}${[...el.classList].map((c) => `.${c}`).join("")}`;
    return [...document.querySelectorAll(selector)]
      .filter((el) => el.scrollWidth > el.clientWidth)
      .map((el) => `${name(el)} by ${el.scrollWidth - el.clientWidth}px`);
  }, CONTAINERS);
  assert.deepEqual(inside, [], `${what}: content overflows its container`);
}

/// How many lines the text of the element occupies: one rectangle per line box, so more than
/// one top is text cut in two.
async function lineCount(locator) {
  return locator.evaluate((el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
  });
}

/// The Client IDs in the list's table, in order.
async function listedIds(page) {
  return (await page.locator('td[data-label="Client ID"] code').allTextContents()).map((s) => s.trim());
}

/// The names in the list's table, in order.
async function listedNames(page) {
  return (await page.locator('td[data-label="Name"] a').allTextContents()).map((s) => s.trim());
}

/// Every row from the current page on, following "Next page".
async function allPages(page) {
  const ids = [];
  let pages = 0;
  for (;;) {
    pages += 1;
    assert.ok(pages < 20, "the pages end");
    ids.push(...(await listedIds(page)));
    const next = page.getByRole("link", { name: "Next page" });
    if ((await next.count()) === 0) break;
    await next.click();
    await page.waitForLoadState();
  }
  return { ids, pages };
}

function luminance(rgb) {
  const m = rgb.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
  const [r, g, b] = m.map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

/// Ids the layout pass needs: a credential, a user other than the admin.
async function ids(page) {
  await page.goto(`${BASE}/portal/credentials?q=Batch+1`);
  const credential = (await listedIds(page))[0];
  await page.goto(`${BASE}/portal/users`);
  const href = await page.getByRole("link", { name: "viewer@acme.test", exact: true }).getAttribute("href");
  return { credential, user: href };
}

async function everyPageFits(browser, size, label, where) {
  const context = await browser.newContext({ viewport: size, isMobile: size === PHONE });
  const page = await context.newPage();

  log(`${label}: the signed-out pages fit`);
  for (const path of ["/portal/sign-in", "/portal/reset-password"]) {
    await page.goto(`${BASE}${path}`);
    await assertFits(page, `${label} ${path}`);
  }

  await signIn(page, ADMIN);
  log(`${label}: every signed-in page fits`);
  const paths = [
    "/portal/credentials",
    "/portal/credentials?q=Batch&env=sandbox&status=active",
    "/portal/credentials?q=nothing-matches-this",
    "/portal/credentials/new",
    `/portal/credentials/${where.credential}`,
    `/portal/credentials/${where.credential}/deactivate`,
    "/portal/users",
    where.user,
    `${where.user}/deactivate`,
    "/portal/audit",
    "/portal/account",
  ];
  for (const path of paths) {
    const res = await page.goto(`${BASE}${path}`);
    assert.equal(res.status(), 200, `${label} ${path}`);
    await assertFits(page, `${label} ${path}`);
  }

  log(`${label}: the rotate confirmation and a refused form fit`);
  await page.goto(`${BASE}/portal/credentials/${where.credential}`);
  await page.getByLabel("Current secret keeps working for").selectOption("0");
  await page.getByRole("button", { name: "Rotate secret" }).click();
  await page.getByRole("heading", { name: "Stop the current secret now?" }).waitFor();
  await assertFits(page, `${label} rotate confirmation`);
  await page.goto(`${BASE}/portal/credentials/new`);
  await page.getByRole("button", { name: "Generate credential" }).click();
  await page.getByText("Enter a name for the credential.").waitFor();
  await assertFits(page, `${label} generate form with errors`);

  log(`${label}: the header holds one line and leaves no empty band`);
  await page.goto(`${BASE}/portal/account`);
  const header = await page.locator("header.topbar").boundingBox();
  const brand = await page.locator("header .brand").boundingBox();
  const signOut = await page.getByRole("button", { name: "Sign out" }).boundingBox();
  assert.ok(header.height <= 64, `${label}: the header is ${header.height}px tall`);
  assert.ok(Math.abs(brand.y + brand.height / 2 - (signOut.y + signOut.height / 2)) < 8, `${label}: brand and sign-out on one line`);
  const nav = await page.locator("nav.sidenav").boundingBox();
  if (size === PHONE) {
    // The navigation is as tall as its tabs, no taller.
    const tabs = await page.locator("nav.sidenav ul").boundingBox();
    const band = nav.y + nav.height - (tabs.y + tabs.height);
    assert.ok(band <= 12, `${label}: ${band}px of empty band under the tabs`);
    const main = await page.locator("main").boundingBox();
    assert.ok(main.y - (nav.y + nav.height) < 2, `${label}: the page starts right under the navigation`);
  }

  log(`${label}: every navigation tab is in view, none hidden off the edge`);
  // The first tab is the longest; as the current page its label is bold, so wider.
  for (const path of ["/portal/credentials", "/portal/account"]) {
    await page.goto(`${BASE}${path}`);
    const links = page.locator("nav.sidenav a");
    assert.equal(await links.count(), 4);
    for (const link of await links.all()) {
      const text = `${path}: "${(await link.textContent()).trim()}"`;
      assert.ok(await link.isVisible(), `${label} ${text} is visible`);
      const box = await link.boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= size.width, `${label} ${text} at x ${box.x}..${box.x + box.width} of ${size.width}`);
      assert.ok(box.y >= 0 && box.y + box.height <= size.height, `${label} ${text} below the fold`);
      assert.equal(await lineCount(link), 1, `${label} ${text} on one line`);
    }
  }

  log(`${label}: Client IDs stay on one line in the list`);
  await page.goto(`${BASE}/portal/credentials`);
  const code = page.locator('td[data-label="Client ID"] code').first();
  const lines = await lineCount(code);
  assert.equal(lines, 1, `${label}: the Client ID wraps onto ${lines} lines`);
  assert.equal(await code.evaluate((el) => getComputedStyle(el).whiteSpace), "nowrap");
  await shot(page, `layout-credentials-${size.width}`);

  log(`${label}: client IDs, IP addresses and emails in the audit log stay on one line`);
  await page.goto(`${BASE}/portal/audit`);
  const ids = await page.locator("table.audit code.id").all();
  const ips = await page.locator('table.audit td[data-label="Source IP"]').all();
  const emails = await page.locator('table.audit td[data-label="By"]', { hasText: "@" }).all();
  let seenIps = 0;
  assert.ok(ids.length > 0 && emails.length > 0, `${label}: the audit log lists credentials and users`);
  for (const cell of [...ids, ...ips, ...emails]) {
    const text = (await cell.textContent()).trim();
    if (text === "") continue;
    if (/^[0-9a-f.:]+$/i.test(text)) seenIps += 1;
    const one = await cell.evaluate((el) => {
      const range = document.createRange();
      range.selectNodeContents(el);
      const box = range.getBoundingClientRect();
      return { height: box.height, line: parseFloat(getComputedStyle(el).lineHeight) };
    });
    assert.equal(await lineCount(cell), 1, `${label}: "${text}" is cut onto several lines`);
    assert.ok(one.height < one.line * 1.5, `${label}: "${text}" is ${one.height}px high, a line is ${one.line}px`);
  }
  assert.ok(seenIps > 0, `${label}: the audit log shows source IP addresses`);
  await shot(page, `layout-audit-${size.width}`);
  await context.close();
}

async function darkScheme(browser) {
  log("the dark scheme: dark backgrounds, light readable text");
  const context = await browser.newContext({ viewport: DESKTOP, colorScheme: "dark" });
  const page = await context.newPage();
  await page.emulateMedia({ colorScheme: "dark" });
  await signIn(page, ADMIN);
  for (const path of ["/portal/credentials", "/portal/credentials/new", "/portal/audit"]) {
    await page.goto(`${BASE}${path}`);
    const colours = await page.evaluate(() => {
      const css = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
      return {
        bg: css("body", "backgroundColor"),
        ink: css("body", "color"),
        h1: css("h1", "color"),
        panel: css(".card", "backgroundColor"),
        muted: css(".muted, .hint", "color"),
        field: css("input, select", "backgroundColor"),
        fieldInk: css("input, select", "color"),
      };
    });
    assert.ok(luminance(colours.bg) < 0.05, `${path}: the background is dark (${colours.bg})`);
    assert.ok(luminance(colours.panel) < 0.05, `${path}: cards are dark (${colours.panel})`);
    assert.ok(luminance(colours.ink) > 0.6, `${path}: text is light (${colours.ink})`);
    assert.ok(contrast(colours.ink, colours.bg) >= 7, `${path}: body text contrast`);
    assert.ok(contrast(colours.h1, colours.bg) >= 7, `${path}: heading contrast`);
    assert.ok(contrast(colours.muted, colours.panel) >= 4.5, `${path}: muted text contrast`);
    assert.ok(contrast(colours.fieldInk, colours.field) >= 4.5, `${path}: form fields`);
  }
  await context.close();
}

async function searchFilterAndPages(browser) {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  await signIn(page, ADMIN);

  log("the list pages through every credential, 20 at a time");
  const first = await listedIds(page);
  assert.equal(first.length, 20);
  const { ids, pages } = await allPages(page);
  assert.ok(ids.length >= BATCH + 1, `every credential listed (${ids.length})`);
  assert.equal(new Set(ids).size, ids.length, "none twice");
  assert.equal(pages, Math.ceil(ids.length / 20));
  await page.getByRole("link", { name: "First page" }).click();
  assert.deepEqual(await listedIds(page), first);

  log("searching by name and by Client ID");
  await page.getByLabel("Search", { exact: true }).fill("batch 1");
  await page.getByRole("button", { name: "Search" }).click();
  const names = await listedNames(page);
  const expected = Array.from({ length: BATCH }, (_, i) => `Batch ${i}`).filter((n) => n.startsWith("Batch 1"));
  assert.deepEqual([...names].sort(), expected.sort());
  assert.equal(await page.getByLabel("Search", { exact: true }).inputValue(), "batch 1", "the search stays in the box");
  const one = first[3];
  await page.getByLabel("Search", { exact: true }).fill(one);
  await page.getByRole("button", { name: "Search" }).click();
  assert.deepEqual(await listedIds(page), [one]);

  log("filtering by data access and status");
  await page.getByLabel("Search", { exact: true }).fill("Batch");
  await page.getByLabel("Data access", { exact: true }).selectOption("production");
  await page.getByRole("button", { name: "Search" }).click();
  const prod = await listedNames(page);
  assert.equal(prod.length, Math.ceil(BATCH / 5));
  assert.ok(prod.every((n) => Number(n.split(" ")[1]) % 5 === 0), prod.join(", "));
  await page.getByRole("link", { name: "Clear" }).click();
  await page.getByLabel("Status", { exact: true }).selectOption("deactivated");
  await page.getByRole("button", { name: "Search" }).click();
  assert.deepEqual(await listedNames(page), ["HR system sync"], "deactivated by portal.test.js");
  await page.getByLabel("Search", { exact: true }).fill("no such credential");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByText("No credentials match").waitFor();
  await context.close();
}

async function editSettings(browser) {
  log("an admin edits audiences, token lifetime, rate limit and expiry, and sees them");
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  await signIn(page, ADMIN);
  await page.goto(`${BASE}/portal/credentials?q=Batch+3`);
  await page.getByRole("link", { name: "Batch 3", exact: true }).click();
  await page.getByRole("heading", { name: "Details" }).waitFor();
  assert.match(await page.locator("#expires").textContent(), /Never/);
  await page.getByLabel("Audiences").fill("https://api.acme.test\nhttps://reports.acme.test");
  await page.getByLabel("Token lifetime (seconds)").fill("900");
  await page.getByLabel("Rate limit (tokens per minute)").fill("42");
  await page.getByLabel("Expiry").selectOption("30d");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Changes saved.").waitFor();
  assert.match(await page.locator("#audiences").textContent(), /https:\/\/reports\.acme\.test/);
  assert.match(await page.locator("#token-lifetime").textContent(), /15 minutes \(900 s\)/);
  assert.match(await page.locator("#rate-limit").textContent(), /42 tokens per minute/);
  assert.doesNotMatch(await page.locator("#expires").textContent(), /Never/);
  assert.equal(await page.getByLabel("Token lifetime (seconds)").inputValue(), "900");

  log("a lifetime out of bounds is refused on the form");
  await page.getByLabel("Token lifetime (seconds)").fill("5");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.locator("#token_lifetime-error").waitFor();
  assert.match(await page.locator("#token-lifetime").textContent(), /900 s/, "nothing changed");
  await context.close();
}

async function claims(browser) {
  log("claims: tenant editable by the org admin (--org-editable-claim tenant), tier read-only");
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  await signIn(page, ADMIN);
  await page.goto(`${BASE}/portal/credentials?q=Claims+demo`);
  await page.getByRole("link", { name: "Claims demo" }).click();
  await page.getByRole("heading", { name: "Details" }).waitFor();
  assert.match(await page.locator("#claims").textContent(), /tier/);
  assert.equal(await page.locator('input[name="claim.tier"]').count(), 0, "tier is read-only");
  const tenant = page.locator('input[name="claim.tenant"]');
  assert.equal(await tenant.inputValue(), "t-1");
  await tenant.fill("t-2");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Changes saved.").waitFor();
  assert.match(await page.locator("#claims").textContent(), /"t-2"/);
  assert.match(await page.locator("#claims").textContent(), /"gold"/, "tier unchanged");
  const url = page.url().split("?")[0];
  await context.close();

  log("claims: a viewer has no inputs at all");
  const viewerCtx = await browser.newContext({ viewport: DESKTOP });
  const viewer = await viewerCtx.newPage();
  await signIn(viewer, VIEWER);
  await viewer.goto(url);
  await viewer.getByRole("heading", { name: "Details" }).waitFor();
  assert.equal(await viewer.locator('input[name^="claim."]').count(), 0);
  assert.match(await viewer.locator("#claims").textContent(), /"t-2"/);
  await viewerCtx.close();
}

async function publicKeys(browser) {
  for (const [viewport, size] of [[PHONE, "390x844"], [DESKTOP, "1280x800"]]) {
    log(`${size}: a public key registered, shown with its thumbprint, removed after a confirmation`);
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    await signIn(page, ADMIN);
    await page.goto(`${BASE}/portal/credentials?q=Claims+demo`);
    await page.getByRole("link", { name: "Claims demo" }).click();
    await page.getByRole("heading", { name: "Public keys" }).waitFor();
    await page.locator("#public-key-input").fill(
      '{"kty":"OKP","crv":"Ed25519","kid":"e2e-key","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}',
    );
    await page.getByRole("button", { name: "Register key" }).click();
    await page.getByText("Public key registered").waitFor();
    assert.match(await page.locator("#public-keys").textContent(), /kid e2e-key/);
    await assertFits(page, `${size}: the credential page with a public key`);
    await page.locator("#public-keys").getByRole("link", { name: "Remove" }).click();
    await assertFits(page, `${size}: the removal's confirmation`);
    await page.getByRole("button", { name: "Yes, remove the key" }).click();
    await page.getByText("Public key removed").waitFor();
    assert.match(await page.locator("#public-keys").textContent(), /No public keys registered/);
    await context.close();
  }
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.TOKENMINT_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox"],
  });
  const setup = await browser.newContext({ viewport: DESKTOP });
  const setupPage = await setup.newPage();
  await signIn(setupPage, ADMIN);
  const where = await ids(setupPage);
  await setup.close();

  await searchFilterAndPages(browser);
  await editSettings(browser);
  await claims(browser);
  await publicKeys(browser);
  await everyPageFits(browser, PHONE, "390x844", where);
  await everyPageFits(browser, DESKTOP, "1280x800", where);
  await darkScheme(browser);
  await browser.close();
  console.log("e2e: all layout and credential-page scenarios passed");
}

main().catch((e) => {
  console.error(`e2e: FAILED at "${step}":`, e);
  process.exit(1);
});
