// The credential portal in a real headless Chromium: the scenario of issue 3, step by step.
// Started by e2e/run.sh, which provides BASE (the server), the users' passwords and
// SCREENSHOTS (where the main pages are saved).
"use strict";

const assert = require("node:assert/strict");
const http = require("node:http");
const path = require("node:path");
const { chromium } = require("playwright-core");

const BASE = process.env.BASE;
const SHOTS = process.env.SCREENSHOTS;
const ADMIN = { email: "admin@acme.test", password: process.env.ADMIN_PASSWORD };
const VIEWER = { email: "viewer@acme.test", password: process.env.VIEWER_PASSWORD };
const OTHER = { email: "admin@globex.test", password: process.env.OTHER_PASSWORD };

let step = "start";
function log(s) {
  step = s;
  console.log(`e2e: ${s}`);
}

// Ordinary runs write NAME.tmp.png (ignored by git), so running the tests leaves the tree
// clean; TOKENMINT_UPDATE_SCREENSHOTS=1 refreshes the committed NAME.png.
const SHOT_SUFFIX = process.env.TOKENMINT_UPDATE_SCREENSHOTS === "1" ? ".png" : ".tmp.png";

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}${SHOT_SUFFIX}`), fullPage: true });
}

async function token(clientId, secret) {
  const res = await fetch(`${BASE}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: secret }),
  });
  return { status: res.status, body: await res.json() };
}

async function signIn(page, who) {
  await page.goto(`${BASE}/portal/`);
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/// A page of another origin whose form posts to the portal as soon as it loads.
function startAttacker(target) {
  const html = `<!doctype html><html><body>
<form id="f" method="post" action="${target}">
<input name="name" value="Planted by another site"><input name="environment" value="production">
<input name="expiration" value="never"><input name="perm.eligibility" value="write">
</form><script>document.getElementById("f").submit()</script></body></html>`;
  const server = http.createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(html);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.TOKENMINT_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const cspErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
  });

  log("the portal asks to sign in");
  await page.goto(`${BASE}/portal/`);
  assert.match(page.url(), /\/portal\/sign-in$/);
  await shot(page, "sign-in");

  log("a wrong password is refused without saying whether the account exists");
  await page.getByLabel("Email").fill(ADMIN.email);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("The email or password is incorrect.").waitFor();
  assert.match(page.url(), /\/portal\/sign-in$/);
  await page.getByLabel("Email").fill("nobody@acme.test");
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("The email or password is incorrect.").waitFor();

  log("signing in shows the empty state");
  await signIn(page, ADMIN);
  await page.waitForURL(/\/portal\/credentials$/);
  await page.getByRole("heading", { name: "API OAuth credentials" }).waitFor();
  await page.getByRole("heading", { name: "No credentials yet" }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "tm_session");
  assert.ok(session, "a session cookie is set");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  await shot(page, "credentials-empty");

  log("generating a Sandbox credential with Read on eligibility");
  await page.getByRole("link", { name: "Generate credential" }).first().click();
  await page.getByLabel("Credential name").fill("HR system sync");
  await page.getByLabel("Sandbox").check();
  await page.getByLabel("Never expire").check();
  await page.getByLabel("eligibility").selectOption("read");
  assert.equal(await page.getByLabel("billing").inputValue(), "none");
  await page.getByRole("radiogroup", { name: "Data access" }).waitFor();
  await page.getByRole("radiogroup", { name: "Credential expiration" }).waitFor();
  await shot(page, "generate-credential");
  await page.getByRole("button", { name: "Generate credential" }).click();

  log("the Client ID and Secret are shown once");
  await page.getByRole("heading", { name: "Save your client secret" }).waitFor();
  await page.getByText("Credential generated.").waitFor();
  await page.getByText("will not be shown again").waitFor();
  const clientId = (await page.locator("#new-client-id").textContent()).trim();
  const secret = (await page.locator("#new-client-secret").textContent()).trim();
  assert.match(clientId, /^\S+$/);
  assert.ok(secret.length >= 32, "a high-entropy secret");
  assert.ok(!page.url().includes(secret), "the secret is not in the URL");
  await shot(page, "credential-secret");

  log("the secret obtains a token with the eligibility read scope");
  let t = await token(clientId, secret);
  assert.equal(t.status, 200, JSON.stringify(t.body));
  assert.equal(t.body.scope, "eligibility:read");

  log("after a reload the secret is gone");
  await page.reload();
  await page.getByRole("heading", { name: "Details" }).waitFor();
  assert.equal(await page.locator("#new-client-secret").count(), 0);
  assert.equal(await page.getByText("Credential generated.").count(), 0, "nor the message with it");
  assert.ok(!(await page.content()).includes(secret), "the secret appears nowhere on the page");
  await page.getByRole("heading", { name: "Recent activity" }).waitFor();
  assert.equal(await page.locator("svg.chart rect").count(), 14, "one bar per day");

  log("editing permissions: Read & write on billing");
  await page.getByLabel("billing").selectOption("write");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("billing:read billing:write eligibility:read").waitFor();
  t = await token(clientId, secret);
  assert.equal(t.status, 200);
  assert.equal(t.body.scope, "billing:read billing:write eligibility:read");
  await shot(page, "credential-details");

  log("rotating the secret, the old one stopping at once");
  await page.getByLabel("Current secret keeps working for").selectOption("0");
  await page.getByRole("button", { name: "Rotate secret" }).click();
  // Stopping the current secret at once breaks integrations: the portal asks first.
  await page.getByRole("heading", { name: "Stop the current secret now?" }).waitFor();
  assert.equal((await token(clientId, secret)).status, 200, "asking changed nothing");
  await page.getByRole("button", { name: "Yes, rotate and stop it now" }).click();
  await page.getByRole("heading", { name: "Your new client secret" }).waitFor();
  await page.getByText("Secret rotated.").waitFor();
  const rotated = (await page.locator("#new-client-secret").textContent()).trim();
  assert.notEqual(rotated, secret);
  assert.equal((await token(clientId, rotated)).status, 200);
  assert.equal((await token(clientId, secret)).status, 401, "the old secret no longer works");

  log("deactivating, with a confirmation, and the token endpoint refuses");
  await page.reload();
  await page.getByRole("link", { name: "Deactivate credential" }).click();
  await page.getByRole("heading", { name: /Deactivate/ }).waitFor();
  await page.getByRole("button", { name: "Yes, deactivate" }).click();
  await page.locator(".badge-off", { hasText: "Deactivated" }).first().waitFor();
  t = await token(clientId, rotated);
  assert.equal(t.status, 401);
  assert.equal(t.body.error, "invalid_client");

  log("a form posted from another site is refused");
  const attacker = await startAttacker(`${BASE}/portal/credentials`);
  const evil = `http://127.0.0.1:${attacker.address().port}/`;
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${BASE}/portal/credentials` && r.request().method() === "POST"),
    page.goto(evil),
  ]);
  assert.equal(refused.status(), 403);
  await page.getByRole("heading", { name: "Request refused" }).waitFor();
  attacker.close();
  await page.goto(`${BASE}/portal/credentials`);
  assert.equal(await page.getByText("Planted by another site").count(), 0, "nothing was created");
  await page.getByRole("link", { name: "HR system sync" }).waitFor();
  await shot(page, "credentials-list");

  log("the audit log shows what the user did");
  await page.getByRole("link", { name: "Audit log" }).click();
  // The event filter's options carry the same words: look in the table only.
  const events = page.locator("table");
  await events.getByText("Credential generated").first().waitFor();
  await events.getByText("Secret rotated").first().waitFor();
  await page.getByRole("cell", { name: "admin@acme.test" }).first().waitFor();
  assert.equal(await page.getByText("user:admin@acme.test").count(), 0, "actors are named, not coded");
  await page.getByLabel("Event", { exact: true }).selectOption("credential.secret_rotated");
  await page.getByRole("button", { name: "Filter" }).click();
  await events.getByText("Secret rotated").first().waitFor();
  assert.equal(await events.getByText("Credential generated").count(), 0, "the filter applies");
  await shot(page, "audit-log");

  log("the users page lets the admin add a viewer");
  await page.getByRole("link", { name: "Users" }).click();
  await page.getByLabel("Email").fill("new.viewer@acme.test");
  await page.getByLabel("Role").selectOption("viewer");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.getByRole("heading", { name: "User added" }).waitFor();
  await shot(page, "users");

  log("deactivating a user asks first and says it is done; reactivating too");
  await page.getByRole("link", { name: "new.viewer@acme.test" }).click();
  await page.getByRole("link", { name: "Deactivate user" }).click();
  await page.getByRole("heading", { name: "Deactivate new.viewer@acme.test?" }).waitFor();
  await page.getByRole("button", { name: "Yes, deactivate" }).click();
  await page.getByText("User deactivated").first().waitFor();
  await page.getByRole("button", { name: "Reactivate user" }).click();
  await page.getByText("User reactivated").first().waitFor();

  log("a reset code is shown once, on the page the form redirects to, and a reload issues none");
  const [posted] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/reset-password") && r.request().method() === "POST"),
    page.getByRole("button", { name: "Generate reset code" }).click(),
  ]);
  assert.equal(posted.status(), 303, "the POST redirects: a reload re-submits nothing");
  await page.getByRole("heading", { name: "Password reset code" }).waitFor();
  const code = (await page.locator("#reset-code").textContent()).trim();
  assert.match(code, /^tmr_/);
  assert.ok(!page.url().includes(code), "the code is not in the URL");
  await shot(page, "reset-code");
  const userPage = page.url();
  await page.reload();
  await page.getByRole("heading", { name: "Reset password" }).waitFor();
  assert.equal(page.url(), userPage);
  assert.equal(await page.locator("#reset-code").count(), 0, "a reload shows no code");
  assert.ok(!(await page.content()).includes("tmr_"), "neither this code nor a new one");
  // The code shown is still the valid one: the reload issued no newer code to replace it.
  const resetCtx = await browser.newContext();
  const resetPage = await resetCtx.newPage();
  await resetPage.goto(`${BASE}/portal/reset-password`);
  await resetPage.getByLabel("Reset code").fill(code);
  await resetPage.getByRole("button", { name: "Continue" }).click();
  // The password step names the account, for password managers to save the new one under.
  const username = resetPage.locator('input[autocomplete="username"]');
  assert.equal(await username.inputValue(), "new.viewer@acme.test");
  assert.equal(await username.getAttribute("readonly"), "");
  await resetPage.getByLabel("New password", { exact: true }).fill("a new viewer password");
  await resetPage.getByLabel("New password again").fill("a new viewer password");
  await resetPage.getByRole("button", { name: "Set password" }).click();
  await resetPage.waitForURL(/\/portal\/sign-in\?done=password-set$/);
  await resetPage.getByLabel("Email").fill("new.viewer@acme.test");
  await resetPage.getByLabel("Password").fill("a new viewer password");
  await resetPage.getByRole("button", { name: "Sign in" }).click();
  await resetPage.waitForURL(/\/portal\/credentials$/);
  await resetCtx.close();

  log("the pages fit a phone");
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  await phone.addCookies([session]);
  const mobile = await phone.newPage();
  await mobile.goto(`${BASE}/portal/credentials/${clientId}`);
  await mobile.getByRole("heading", { name: "Details" }).waitFor();
  const overflow = await mobile.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no horizontal scrolling on a phone (overflow ${overflow}px)`);
  // The chart's day labels keep a readable size however far the drawing shrinks.
  const labels = await mobile.locator(".chart-axis span").evaluateAll((spans) =>
    spans.map((s) => ({ px: parseFloat(getComputedStyle(s).fontSize), height: s.getBoundingClientRect().height })),
  );
  assert.equal(labels.length, 2, "the first and the last day are labelled");
  for (const l of labels) {
    assert.ok(l.px >= 11 && l.height >= 11, `chart labels readable on a phone: ${JSON.stringify(l)}`);
  }
  await shot(mobile, "credential-phone");
  await phone.close();

  log("a viewer sees the credential but no way to change it");
  const viewerCtx = await browser.newContext();
  const viewer = await viewerCtx.newPage();
  await signIn(viewer, VIEWER);
  await viewer.waitForURL(/\/portal\/credentials$/);
  assert.equal(await viewer.getByRole("link", { name: "Generate credential" }).count(), 0);
  await viewer.getByRole("link", { name: "HR system sync" }).click();
  await viewer.getByRole("heading", { name: "Details" }).waitFor();
  assert.equal(await viewer.getByRole("button", { name: "Save changes" }).count(), 0);
  assert.equal(await viewer.getByRole("button", { name: "Rotate secret" }).count(), 0);
  await viewerCtx.close();

  log("another organization's admin cannot see the credential");
  const otherCtx = await browser.newContext();
  const other = await otherCtx.newPage();
  await signIn(other, OTHER);
  await other.getByRole("heading", { name: "No credentials yet" }).waitFor();
  const res = await other.goto(`${BASE}/portal/credentials/${clientId}`);
  assert.equal(res.status(), 404);
  await otherCtx.close();

  log("signing out ends the session");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/portal\/sign-in\?done=signed-out$/);
  await page.getByText("You are signed out.").waitFor();
  // A page asked for while signed out is where signing in goes on to.
  await page.goto(`${BASE}/portal/credentials`);
  assert.match(page.url(), /\/portal\/sign-in\?next=%2Fportal%2Fcredentials$/);

  assert.deepEqual(cspErrors, [], "no Content-Security-Policy violations");
  await browser.close();
  console.log("e2e: all portal scenarios passed");
}

main().catch((e) => {
  console.error(`e2e: FAILED at "${step}":`, e);
  process.exit(1);
});
