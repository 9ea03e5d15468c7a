// Drives the gateway's web pages in a real browser (Debian's Chromium, headless, through
// playwright-core) the way a person would, and prints what it saw as one JSON object for
// tests/integration/test_web.cpp to check. Nothing is asserted here: this only looks.
//   node web_check.mjs CONFIG.json
// CONFIG: { base, artifacts, alice, carol, eve, upload_file, upload_text }
// Screenshots (desktop and phone widths) go to CONFIG.artifacts.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(config.artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const seen = { csp_violations: [], dialogs: [], console_errors: [] };

async function newPage(options = {}) {
  const context = await browser.newContext({ acceptDownloads: true, ...options });
  const page = await context.newPage();
  page.on("console", (m) => {
    // A page that is itself an error (404, 400) logs its own status: those are asked for.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      seen.console_errors.push(m.text());
      if (/Content.Security.Policy/i.test(m.text())) seen.csp_violations.push(m.text());
    }
  });
  // Every style sheet, script and icon a page asks for must be there.
  page.on("response", (r) => {
    if (r.request().resourceType() !== "document" && r.status() >= 400) {
      seen.console_errors.push(`${r.status()} for ${r.url()}`);
    }
  });
  page.on("dialog", async (d) => { seen.dialogs.push(d.message()); await d.dismiss(); });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: `${config.artifacts}/${name}.png`, fullPage: true });
}

// The facts of each key article on a page.
async function articles(page) {
  return page.$$eval("main article.key", (list) => list.map((a) => ({
    title: a.querySelector(".key-title")?.textContent.trim(),
    link: a.querySelector(".key-title a")?.getAttribute("href") || null,
    fingerprint: a.querySelector("code.fpr")?.textContent,
    revoked_banner: a.querySelector(".state.bad")?.textContent.trim() || null,
    classes: a.className,
    uids: [...a.querySelectorAll("ul.uids li")].map((li) => li.textContent.trim()),
    subkeys: [...a.querySelectorAll("ul.subkeys li")].map((li) => li.textContent.trim()),
  })));
}

// Markup a user ID could have smuggled in: elements no template writes inside main.
async function smuggled(page) {
  return page.$$eval("main script, main img, main iframe, main object, main [onerror], main [onclick]",
                     (l) => l.length);
}

async function overflows(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
}

const out = {};
const page = await newPage({ viewport: { width: 1280, height: 900 } });

// Home: the search box, by its label, the way a keyboard user reaches it.
await page.goto(config.base + "/");
out.home = { title: await page.title(), label: await page.locator("label[for=q-home]").textContent() };
await shot(page, "home");

// Search by address through the form.
await page.getByLabel("Email address, fingerprint or key ID").fill("alice@example.org");
await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
out.search = { url: page.url(), h1: await page.locator("h1").textContent(), articles: await articles(page) };
await shot(page, "search-alice");

// Follow the result to its key page.
await Promise.all([page.waitForNavigation(),
                  page.locator("main article.key .key-title a").first().click()]);
out.key = {
  url: page.url(),
  articles: await articles(page),
  copy_visible: await page.locator("button.copy").first().isVisible(),
  download_href: await page.locator("a[download]").getAttribute("href"),
  howto: await page.locator("dl.howto").textContent(),
  facts: (await page.locator("dl.facts").first().textContent()).replace(/\s+/g, " "),
};
await shot(page, "key-alice");
// The copy button puts the fingerprint on the clipboard.
await page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
await page.locator("button.copy").first().click();
out.key.copied = await page.evaluate(() => navigator.clipboard.readText());
out.key.copy_label = await page.locator("button.copy").first().textContent();
// Download it.
const [download] = await Promise.all([page.waitForEvent("download"), page.locator("a[download]").click()]);
out.key.download_name = download.suggestedFilename();
out.key.download_text = readFileSync(await download.path(), "utf8");

// A fingerprint pasted as gpg prints it, spaces and all: straight to the key page.
await page.goto(config.base + "/");
await page.fill("#q-home", config.carol.replace(/(.{4})/g, "$1 ").trim());
await Promise.all([page.waitForURL("**/key/*"), page.keyboard.press("Enter")]);
out.carol = { url: page.url(), articles: await articles(page) };
await shot(page, "key-carol-revoked");

// The hostile user ID.
await page.goto(config.base + "/search?q=eve%40example.org");
out.eve = { articles: await articles(page), smuggled: await smuggled(page) };
await page.goto(config.base + "/key/" + config.eve);
out.eve.key_page_smuggled = await smuggled(page);
out.eve.title = await page.title();
await shot(page, "key-eve-hostile");

// Upload: paste, then a file.
await page.goto(config.base + "/upload");
await page.getByLabel(/Paste an armored public key/).fill(config.upload_text);
await Promise.all([page.waitForNavigation(), page.locator("form.upload button").first().click()]);
out.upload_paste = { h1: await page.locator("h1").textContent(), result: await page.locator("pre.result").textContent() };
await shot(page, "upload-pasted");
await page.goto(config.base + "/upload");
await page.setInputFiles("#keyfile", config.upload_file);
await Promise.all([page.waitForNavigation(), page.locator("form.upload button").nth(1).click()]);
out.upload_file = { h1: await page.locator("h1").textContent(), result: await page.locator("pre.result").textContent() };
await page.goto(config.base + "/upload");
await page.getByLabel(/Paste an armored public key/).fill("this is not a key");
await Promise.all([page.waitForNavigation(), page.locator("form.upload button").first().click()]);
out.upload_junk = { h1: await page.locator("h1").textContent(), result: await page.locator("pre.result").textContent() };
await shot(page, "upload-refused");

// Help and status.
await page.goto(config.base + "/help");
out.help = { text: await page.locator("main").textContent(), html: await page.content() };
await shot(page, "help");

// An error a browser gets.
const missing = await page.goto(config.base + "/no/such/page");
out.error = { status: missing.status(), h1: await page.locator("h1").textContent() };
await page.goto(config.base + "/search?q=nobody%40example.org");
out.not_found = { h1: await page.locator("h1").textContent() };

// Without JavaScript: search and the key page work; the copy button stays hidden.
const plain = await newPage({ javaScriptEnabled: false });
await plain.goto(config.base + "/");
await plain.fill("#q-home", "alice@example.org");
await Promise.all([plain.waitForNavigation(), plain.keyboard.press("Enter")]);
out.nojs = { h1: await plain.locator("h1").textContent(), articles: (await articles(plain)).length };
await plain.goto(config.base + "/key/" + config.alice);
out.nojs.copy_visible = await plain.locator("button.copy").first().isVisible();

// A phone: nothing wider than the screen.
const phone = await newPage({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
out.phone = {};
for (const [name, path] of [["home", "/"], ["search", "/search?q=alice%40example.org"],
                            ["key", "/key/" + config.alice], ["upload", "/upload"], ["help", "/help"]]) {
  await phone.goto(config.base + path);
  out.phone[name] = await overflows(phone);
  await shot(phone, "phone-" + name);
}

// Accessibility: axe-core on each page (its script injected past the page's CSP, in a context
// of its own; the pages themselves never run inline script).
const audit = await newPage({ bypassCSP: true });
out.axe = {};
for (const [name, path] of [["home", "/"], ["search", "/search?q=alice%40example.org"],
                            ["key", "/key/" + config.alice], ["revoked", "/key/" + config.carol],
                            ["upload", "/upload"], ["help", "/help"], ["error", "/no/such/page"]]) {
  await audit.goto(config.base + path);
  await audit.addScriptTag({ content: axeSource });
  const result = await audit.evaluate(async () =>
    (await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "best-practice"] })).violations
      .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help })));
  out.axe[name] = result;
}

out.seen = seen;
await browser.close();
console.log(JSON.stringify(out));
