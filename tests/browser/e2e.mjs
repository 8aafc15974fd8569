// Chromium end-to-end scenarios, run by tests/browser.rs (which starts the servers and
// passes their URLs in E2E_SETUP). Each scenario gets a fresh browser context; the browser
// never reaches the network: the widget is the stand-in served on loopback.
import { createHmac } from "node:crypto";
import { chromium } from "playwright-core";

const setup = JSON.parse(process.env.E2E_SETUP);
const results = [];

function fail(message) {
  throw new Error(message);
}

function assert(condition, message) {
  if (!condition) fail(message);
}

/** Verifies an HS256 JWT with the Messenger secret, as Intercom would; returns its claims. */
function verifyJwt(token) {
  const [header, payload, signature] = token.split(".");
  const expected = createHmac("sha256", setup.messengerSecret).update(`${header}.${payload}`).digest("base64url");
  assert(signature === expected, "the Messenger JWT does not verify with the Messenger secret");
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
  assert(claims.exp * 1000 > Date.now(), "the Messenger JWT is expired");
  return claims;
}

async function newPage(browser, expectedErrors = []) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    // The apps have no favicon; the browser asking for one is not the proxy's doing. A
    // scenario may expect errors (the app's own policy refusing the app's own markup).
    const expected = expectedErrors.some((re) => re.test(m.text()));
    if (m.type() === "error" && !expected && !m.location().url.endsWith("/favicon.ico")) {
      problems.push(`console: ${m.text()} (${m.location().url})`);
    }
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`)
    );
  });
  return { context, page, problems };
}

/** Waits until the stand-in widget has processed the page's snippet. */
async function widgetState(page) {
  await page.waitForFunction(() => window.__intercomStub && window.__intercomStub.calls.length > 0, null, {
    timeout: 10000,
  });
  // A boot with a JWT is verified by the stand-in over fetch: wait for that too.
  await page.waitForFunction(
    () => {
      const s = window.__intercomStub;
      const withJwt = s.boots.filter((b) => b && b.intercom_user_jwt).length;
      return s.verified.length >= withJwt;
    },
    null,
    { timeout: 10000 }
  );
  return page.evaluate(() => ({
    calls: window.__intercomStub.calls.map((c) => c[0]),
    boots: window.__intercomStub.boots,
    verified: window.__intercomStub.verified,
    shutdowns: window.__intercomStub.shutdowns,
    badge: document.getElementById("intercom-demo-badge")?.textContent || "",
    violations: window.__cspViolations,
    appRan: window.appRan === true,
  }));
}

function bootedUser(state) {
  const last = state.boots[state.boots.length - 1];
  if (!last || !last.intercom_user_jwt) return null;
  return verifyJwt(last.intercom_user_jwt).user_id;
}

async function cookieNames(context) {
  return (await context.cookies()).map((c) => c.name);
}

async function postForm(page, action, fields) {
  await Promise.all([
    page.waitForNavigation(),
    page.evaluate(
      ({ action, fields }) => {
        const form = document.createElement("form");
        form.method = "post";
        form.action = action;
        for (const [name, value] of Object.entries(fields)) {
          const input = document.createElement("input");
          input.name = name;
          input.value = value;
          form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
      },
      { action, fields }
    ),
  ]);
}

async function scenario(browser, name, body, expectedErrors = []) {
  const started = Date.now();
  const { context, page, problems } = await newPage(browser, expectedErrors);
  try {
    await body({ context, page });
    assert(problems.length === 0, `browser errors: ${problems.join("; ")}`);
    results.push({ name, ok: true });
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`not ok - ${name}: ${e.message}`);
  } finally {
    await context.close();
  }
}

const browser = await chromium.launch({
  executablePath: setup.chromium,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

// --- The demo app -------------------------------------------------------------------------
await scenario(browser, "demo: login boots the Messenger with a verified JWT for that user", async ({ page, context }) => {
  await page.goto(`${setup.demo}/login`);
  await postForm(page, "/login", { username: "alice", password: "alice" });
  assert(page.url().endsWith("/dashboard"), `landed on ${page.url()}`);
  const state = await widgetState(page);
  assert(bootedUser(state) === "u-1001", `booted ${bootedUser(state)}`);
  assert(state.boots[0].api_base === "https://api-iam.intercom.io", "api_base of the region");
  assert(state.badge === "Messenger booted for alice@example.com (JWT verified)", `badge: ${state.badge}`);
  assert((await cookieNames(context)).includes("intercom-session-demo1234"), "Intercom session cookie set");
  assert(state.violations.length === 0, `CSP violations: ${state.violations}`);
  await page.screenshot({ path: `${setup.screenshots}/demo-dashboard.png` });
});

await scenario(browser, "demo: logout by redirect shuts the Messenger down on the next page", async ({ page, context }) => {
  await page.goto(`${setup.demo}/login`);
  await postForm(page, "/login", { username: "bob", password: "bob" });
  await widgetState(page);
  await page.goto(`${setup.demo}/logout`);
  assert(new URL(page.url()).pathname === "/", `landed on ${page.url()}`);
  const state = await widgetState(page);
  assert(state.shutdowns === 1, `shutdowns: ${state.shutdowns}`);
  assert(bootedUser(state) === null, "no identity after logout");
  assert(state.badge === "Messenger shut down", `badge: ${state.badge}`);
  assert(!(await cookieNames(context)).includes("intercom-session-demo1234"), "Intercom session cookie gone");
  await page.screenshot({ path: `${setup.screenshots}/demo-logged-out.png` });
  await page.goto(`${setup.demo}/`);
  const after = await page.evaluate(() => !!window.__intercomStub);
  assert(!after, "the shutdown runs once; the page after is left alone");
});

await scenario(browser, "demo: switching user without logout shuts down before the new boot", async ({ page }) => {
  await page.goto(`${setup.demo}/login`);
  await postForm(page, "/login", { username: "alice", password: "alice" });
  await widgetState(page);
  await page.goto(`${setup.demo}/login`);
  await postForm(page, "/login", { username: "bob", password: "bob" });
  const state = await widgetState(page);
  const shutdownAt = state.calls.indexOf("shutdown");
  const bootAt = state.calls.indexOf("boot");
  assert(shutdownAt >= 0 && bootAt > shutdownAt, `calls: ${state.calls}`);
  assert(bootedUser(state) === "u-1002", `booted ${bootedUser(state)}`);
  const html = await page.content();
  assert(!html.includes("alice"), "nothing of the first user in the second user's page");
});

// --- Content-Security-Policy ----------------------------------------------------------------
for (const kind of ["nonce-header", "hash-header", "nonce-meta", "hash-meta"]) {
  await scenario(browser, `csp: ${kind} policy: the Messenger boots and the app's own script runs`, async ({ page, context }) => {
    await context.addCookies([{ name: "session", value: setup.cspSession, url: setup.csp }]);
    await page.goto(`${setup.csp}/csp/${kind}`);
    const state = await widgetState(page);
    assert(state.appRan, "the app's own script ran");
    assert(bootedUser(state) === "u-csp", `booted ${bootedUser(state)}`);
    assert(state.verified.every((v) => v.ok), "the stand-in verified the JWT");
    assert(state.violations.length === 0, `CSP violations: ${state.violations}`);
  });
}

await scenario(browser, "gzip page: the Messenger boots", async ({ page, context }) => {
  await context.addCookies([{ name: "session", value: setup.cspSession, url: setup.csp }]);
  await page.goto(`${setup.csp}/gzip`);
  const state = await widgetState(page);
  assert(state.appRan && bootedUser(state) === "u-csp", "booted on a gzip page");
});

await scenario(browser, "logout page (HTML) runs the shutdown itself", async ({ page, context }) => {
  await context.addCookies([{ name: "session", value: setup.cspSession, url: setup.csp }]);
  await page.goto(`${setup.csp}/dashboard`);
  await widgetState(page);
  await page.goto(`${setup.csp}/logout-page`);
  const state = await widgetState(page);
  assert(state.shutdowns === 1 && bootedUser(state) === null, `calls: ${state.calls}`);
  assert(!(await cookieNames(context)).includes("intercom-session-testapp1"), "Intercom session cookie gone");
});

await scenario(browser, "SPA logout by fetch: the next page shuts the Messenger down", async ({ page, context }) => {
  await context.addCookies([{ name: "session", value: setup.cspSession, url: setup.csp }]);
  await page.goto(`${setup.csp}/app`);
  await widgetState(page);
  const answer = await page.evaluate(() => fetch("/api/logout", { method: "POST" }).then((r) => r.json()));
  assert(answer.ok === true, "the app's JSON is untouched");
  await page.goto(`${setup.csp}/app`);
  const state = await widgetState(page);
  assert(state.shutdowns === 1 && bootedUser(state) === null, `calls: ${state.calls}`);
  assert(!(await cookieNames(context)).includes("intercom-session-testapp1"), "Intercom session cookie gone");
});

await scenario(browser, "long-lived page: the JWT is refreshed before it expires", async ({ page, context }) => {
  await context.addCookies([{ name: "session", value: setup.cspSession, url: setup.csp }]);
  await page.goto(`${setup.csp}/app`);
  const first = await widgetState(page);
  const firstClaims = verifyJwt(first.boots[0].intercom_user_jwt);
  // token_ttl is 10s here: the page asks for a fresh token at 8s.
  await page.waitForFunction(
    () => window.__intercomStub.calls.some((c) => c[0] === "update" && c[1] && c[1].intercom_user_jwt),
    null,
    { timeout: 20000 }
  );
  const fresh = await page.evaluate(
    () => window.__intercomStub.calls.find((c) => c[0] === "update" && c[1] && c[1].intercom_user_jwt)[1].intercom_user_jwt
  );
  const claims = verifyJwt(fresh);
  assert(claims.user_id === "u-csp", "the fresh token is for the same user");
  assert(claims.exp > firstClaims.exp, `fresh exp ${claims.exp} must be later than ${firstClaims.exp}`);
});

// --- Hardening: markup the proxy must read as the browser does ------------------------------
await scenario(
  browser,
  "hardening: a <meta> CSP written with &#39; keeps every directive, and the Messenger boots",
  async ({ page, context }) => {
    await context.addCookies([{ name: "session", value: setup.cspSession, url: setup.csp }]);
    await page.goto(`${setup.csp}/hardening/entity-meta`);
    const state = await widgetState(page);
    assert(bootedUser(state) === "u-csp", `booted ${bootedUser(state)}`);
    assert(state.verified.every((v) => v.ok), "the stand-in verified the JWT");
    const held = await page.evaluate(() => ({
      color: getComputedStyle(document.querySelector("h1")).color,
      baseURI: document.baseURI,
      href: location.href,
      link: document.getElementById("relative").href,
      rogue: window.rogue === true,
    }));
    assert(held.color !== "rgb(255, 0, 0)", "style-src 'none' still refuses the inline <style>");
    assert(held.baseURI === held.href, `base-uri 'none' still ignores <base>: ${held.baseURI}`);
    assert(held.link === new URL("next", held.href).href, `links resolve against the page: ${held.link}`);
    assert(!held.rogue, "script-src still refuses an inline script without hash");
    assert(state.appRan, "the app's script, allowed by its hash, ran");
    const unexpected = state.violations.filter((v) => !/^(style-src|base-uri|script-src-elem inline)/.test(v));
    assert(unexpected.length === 0, `unexpected CSP violations: ${unexpected}`);
    assert(state.violations.some((v) => v.startsWith("base-uri")), `violations: ${state.violations}`);
  },
  // Chromium's words for what the app's policy refuses (older and newer wordings).
  [
    /(Refused to apply|Applying) inline style .*style-src 'none'/,
    /(Refused to set|Setting) the document's base URI .*base-uri 'none'/,
    /(Refused to execute|Executing) inline script /,
  ]
);

await scenario(browser, "hardening: a page ending inside an open attribute gets no snippet and leaks no JWT", async ({ page, context }) => {
  await context.addCookies([{ name: "session", value: setup.cspSession, url: setup.csp }]);
  const requested = [];
  page.on("request", (r) => requested.push(r.url()));
  // `load` waits for every image the parser started, so whatever the page requested has
  // reached the recorder by then.
  await page.goto(`${setup.csp}/hardening/open-attribute`, { waitUntil: "load" });
  const log = await (await fetch(`${setup.recorder}/log`)).json();
  assert(!log.some((u) => u.startsWith("/exfil")), `the recorder saw: ${log}`);
  assert(!requested.some((u) => u.includes("/exfil") || u.includes("eyJ")), `the browser asked for: ${requested}`);
  const html = await page.content();
  assert(!html.includes("intercom_user_jwt"), "no snippet in the page");
  // The bytes pass untouched (the response did go through the rewriter: its headers show it).
  const proxied = await fetch(`${setup.csp}/hardening/open-attribute`, {
    headers: { cookie: `session=${setup.cspSession}`, accept: "text/html" },
  });
  const direct = await fetch(`${setup.cspUpstream}/hardening/open-attribute`);
  assert(proxied.headers.get("cache-control") === "private, no-store", "the page was one the snippet could go into");
  assert((await proxied.text()) === (await direct.text()), "the page's bytes are the app's");
});

await scenario(browser, "hardening: \"intercomSettings\" in the page title does not stop the boot", async ({ page, context }) => {
  await context.addCookies([{ name: "session", value: setup.cspSession, url: setup.csp }]);
  await page.goto(`${setup.csp}/hardening/title-marker`);
  const state = await widgetState(page);
  assert(bootedUser(state) === "u-csp", `booted ${bootedUser(state)}`);
  assert(state.appRan && (await page.title()) === "intercomSettings: how to boot", "the page is the app's");
});

// --- The real Express + Redis app -----------------------------------------------------------
if (setup.express) {
  await scenario(browser, "express: login, user switch and logout through express-session", async ({ page, context }) => {
    await page.goto(`${setup.express}/`);
    await postForm(page, "/login", { username: "alice" });
    let state = await widgetState(page);
    assert(bootedUser(state) === "u-alice", `booted ${bootedUser(state)}`);
    await postForm(page, "/login", { username: "bob" });
    state = await widgetState(page);
    assert(state.calls.indexOf("shutdown") >= 0 && state.calls.indexOf("shutdown") < state.calls.indexOf("boot"), `calls: ${state.calls}`);
    assert(bootedUser(state) === "u-bob", `booted ${bootedUser(state)}`);
    await postForm(page, "/logout", {});
    state = await widgetState(page);
    assert(state.shutdowns === 1 && bootedUser(state) === null, `calls: ${state.calls}`);
    assert(!(await cookieNames(context)).includes("intercom-session-testapp1"), "Intercom session cookie gone");
  });
} else {
  console.log("skipped: the Express app (no Redis or Node packages)");
}

await browser.close();
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
