// Drives the dashboard in headless Chromium (playwright-core, Debian's /usr/bin/chromium).
//   node browse.mjs URL SCREENSHOT [ACCESS_KEY [CLIENT_KEY_NAME]]
// Checks: the live data renders every endpoint (by name) and the queue state; the summary line
// says what is down and what serves; a retried request is marked; times are relative (exact on
// hover); "Probe now" takes effect (the recovered endpoint leaves the queue); with an access key,
// the page asks for it first; with client keys, their table shows the named key's requests and
// the last requests name it; and nothing scrolls sideways at 1280 px nor on a phone (390 px).
import { chromium } from "playwright-core";

const [url, shot, accessKey, keyName] = process.argv.slice(2);

// Managing from the page (no key configured: the page's own token): add, edit and rotate the
// key of an endpoint, add and remove another, change the cluster's rules, refuse a bad name with the exact error shown as text
// (no script runs), and add the first client key (an admin one: shown once, then the page asks
// for a key and works with it).
async function manage(page) {
  // The edit form is hidden until asked for, and Cancel hides it again.
  const formShown = () => page.$eval("#ep-form", (f) => getComputedStyle(f).display !== "none");
  if (await formShown()) fail("the edit form shows before it is asked for");
  await page.click("#add-endpoint");
  if (!(await formShown())) fail("the edit form does not open");
  await page.click("#ep-cancel");
  if (await formShown()) fail("Cancel does not hide the edit form");
  const alerts = [];
  page.on("dialog", async (d) => { if (d.type() === "alert") alerts.push(d.message()); await d.accept(); });
  const save = async (expect) => {
    await page.evaluate(() => { document.querySelector("#manage-msg").textContent = ""; });
    await page.click("#ep-form button:has-text('Save')");
    await page.waitForFunction((e) => document.querySelector("#manage-msg").textContent.includes(e), expect, { timeout: 10000 })
      .catch(async () => fail("edit result: " + await page.textContent("#manage-msg")));
  };
  await page.click("#add-endpoint");
  await page.fill("#ep-form input[name=name]", "third");
  await page.fill("#ep-form input[name=url]", process.env.THIRD_URL);
  await page.fill("#ep-form input[name=key]", "sk-dash-third-0001");
  await page.fill("#ep-form input[name=priority]", "3");
  await page.fill("#ep-form textarea[name=model_map]", "claude-*=glm-4.6");
  await save("saved");
  await page.waitForFunction(() => document.querySelector("#endpoints tbody").textContent.includes("third"), null, { timeout: 10000 })
    .catch(() => fail("the added endpoint is not shown"));
  const row = "#endpoints tbody tr:has-text('third')";
  await page.click(row + " button:has-text('Edit')");
  if ((await page.inputValue("#ep-form textarea[name=model_map]")) !== "claude-*=glm-4.6") fail("edit form not prefilled");
  await page.fill("#ep-form input[name=priority]", "7");
  await page.fill("#ep-form input[name=key]", "sk-dash-rotated-0002");
  await page.selectOption("#ep-form select[name=format]", "openai");
  await save("saved");
  await page.waitForFunction(() => document.querySelector("#endpoints tbody").textContent.includes("openai · "), null, { timeout: 10000 })
    .catch(() => fail("the endpoint's format is not shown"));
  // A name qcc refuses: the exact error, as text.
  await page.click("#add-endpoint");
  await page.fill("#ep-form input[name=name]", "<img src=x onerror=alert(1)>");
  await page.fill("#ep-form input[name=url]", process.env.THIRD_URL);
  await page.fill("#ep-form input[name=key]", "sk-dash-bad-0003");
  await save("name");
  if (await page.$("#manage-msg img")) fail("an error was rendered as HTML");
  await page.click("#ep-cancel");
  await page.selectOption("#cluster-form select[name=strategy]", "round_robin");
  await page.click("#cluster-form button");
  await page.waitForFunction(() => document.querySelector("#cluster").textContent.includes("round_robin"), null, { timeout: 10000 })
    .catch(() => fail("the strategy change is not applied"));
  await page.click("#add-endpoint");
  await page.fill("#ep-form input[name=name]", "fourth");
  await page.fill("#ep-form input[name=url]", process.env.THIRD_URL);
  await page.fill("#ep-form input[name=key]", "sk-dash-fourth-0004");
  await save("saved");
  const fourth = "#endpoints tbody tr:has-text('fourth')";
  await page.waitForSelector(fourth, { timeout: 10000 }).catch(() => fail("the fourth endpoint is not shown"));
  await page.click(fourth + " button:has-text('Remove')");
  await page.waitForFunction(() => !document.querySelector("#endpoints tbody").textContent.includes("fourth"), null, { timeout: 10000 })
    .catch(() => fail("the removed endpoint is still shown"));
  await page.fill("#key-form input[name=name]", "carol");
  await page.fill("#key-form input[name=rpm]", "5");
  await page.selectOption("#key-form select[name=admin]", "1");
  await page.click("#key-save");
  await page.waitForSelector("#new-key-box:not([hidden])", { timeout: 10000 }).catch(() => fail("the new key is not shown"));
  const newKey = await page.textContent("#new-key");
  if (!/^qcc-[a-z0-9]{40}$/.test(newKey)) fail("new key: " + newKey);
  if (alerts.length) fail("a script ran from data: " + alerts);
  await page.waitForSelector("#login", { state: "visible", timeout: 10000 }).catch(() => fail("no key prompt once a key exists"));
  await page.fill("#key", newKey);
  await page.click("#login button");
  await page.waitForFunction(() => document.querySelector("#keys tbody").textContent.includes("carol"), null, { timeout: 10000 })
    .catch(() => fail("the admin key does not open the page"));
}
const fail = (msg) => { console.error("browse: FAIL: " + msg); process.exit(1); };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url);
  if (accessKey) {
    await page.waitForSelector("#login", { state: "visible", timeout: 10000 }).catch(() => fail("no access-key prompt"));
    await page.fill("#key", accessKey);
    await page.click("#login button");
  }
  await page.waitForSelector("body[data-loaded='1']", { timeout: 10000 }).catch(() => fail("no live data"));
  const rows = await page.$$eval("#endpoints tbody tr", (trs) => trs.map((t) => t.dataset.endpoint));
  if (!rows.includes("a0000001") || !rows.includes("b0000001")) fail("endpoints shown: " + rows);
  const queued = await page.textContent("#endpoints tr[data-endpoint='a0000001']");
  if (!queued.includes("queued")) fail("the failed endpoint is not shown as queued: " + queued);
  const queueRows = await page.$$eval("#queue tbody tr", (trs) => trs.length);
  if (queueRows !== 1) fail("queue table rows: " + queueRows);
  const names = await page.textContent("#endpoints tbody");
  if (!names.includes("primary") || !names.includes("backup")) fail("endpoint names not shown: " + names);
  const summary = await page.textContent("#summary");
  if (!summary.includes("1 of 2 endpoints down") || !summary.includes("serving from backup")) fail("summary: " + summary);
  if (process.env.EXPECT_ROUTE) {
    // A routed cluster: its own row in the clusters section, with the route that leads there.
    const clusters = await page.textContent("#clusters-section:not([hidden])").catch(() => "");
    if (!clusters.includes(process.env.EXPECT_ROUTE)) fail("clusters section: " + clusters);
    // And the endpoints grouped by cluster, each group under its heading.
    const groups = await page.$$eval("#endpoints tr.group", (trs) => trs.map((t) => t.textContent));
    if (groups.length < 2 || !groups[0].includes("(started for)") || !groups.some((g) => g.includes(process.env.EXPECT_ROUTE)))
      fail("endpoint groups: " + groups);
  } else if (await page.isVisible("#clusters-section")) fail("a clusters section with one cluster");
  // The endpoint table fits the 1280 px window, cost and URL in view (no sideways scroll).
  const [tableWidth, room] = await page.$eval("#endpoints", (t) => [t.parentElement.scrollWidth, t.parentElement.clientWidth]);
  if (tableWidth > room + 1) fail(`the endpoint table scrolls sideways at 1280 px (${tableWidth} > ${room})`);
  // The requests say which model answered; the cluster rules say which cluster they change.
  const models = await page.$$eval("#requests tbody tr td:nth-child(5)", (tds) => tds.map((t) => t.textContent));
  if (!models.some((m) => m.includes("claude-haiku-4-5"))) fail("no model in the last requests: " + models);
  const ruled = await page.textContent("#cluster-form");
  if (!ruled.includes("'team'")) fail("the cluster rules do not say which cluster: " + ruled);
  const retried = await page.$$eval("#requests tbody tr.retried", (trs) => trs.map((t) => t.textContent));
  if (retried.length < 1 || !retried[0].includes("retried")) fail("no retried request marked: " + retried);
  const since = await page.$eval("#queue tbody tr td:nth-child(3)", (td) => [td.textContent, td.title]);
  if (!since[0].includes("ago") || !/^\d{4}-\d\d-\d\dT/.test(since[1])) fail("queue time not relative with the exact one on hover: " + since);
  if (keyName) {
    const row = await page.$$eval("#keys tbody tr", (trs, n) => trs.map((t) => [...t.children].map((td) => td.textContent))
      .find((cells) => cells[0] === n), keyName);
    if (!row) fail("client key " + keyName + " not in the keys table");
    if (row[1] !== "active" || row[2] !== "3" || !row[5].includes("rpm")) fail("keys row: " + row);
    const named = await page.$$eval("#requests tbody tr", (trs, n) => trs.filter((t) => t.textContent.includes(n)).length, keyName);
    if (named < 3) fail("last requests do not name the key: " + named);
    // The request history: search by key, open an entry to see each attempt.
    await page.fill("#history-form input[name=key]", keyName);
    await page.click("#history-form button");
    await page.waitForFunction(() => document.querySelectorAll("#history tr.entry").length >= 3, null, { timeout: 10000 })
      .catch(() => fail("the request history shows no entries"));
    const entries = await page.$$("#history tr.entry");
    await entries[entries.length - 1].click(); // the oldest: the primary failed, the backup answered
    const detail = await page.textContent("#history tr.detail:not([hidden])");
    if (!detail.includes("primary") || !detail.includes("HTTP 500") || !detail.includes("backup")) fail("attempts of a request: " + detail);
  } else if ((await page.$$("#keys tbody tr")).length) fail("key rows without client keys");
  const wide = async (what) => {
    // Nothing may reach past the window, except inside a table's own scrolling card.
    const over = await page.evaluate(() => {
      const w = document.documentElement.clientWidth;
      const out = [...document.querySelectorAll("body *")]
        .filter((el) => !el.closest(".scroll") && el.getBoundingClientRect().right > w + 1)
        .map((el) => el.tagName + (el.id ? "#" + el.id : "") + " " + Math.round(el.getBoundingClientRect().right));
      return [document.documentElement.scrollWidth, w, out];
    });
    if (over[0] > over[1] || over[2].length) fail(what + ": the page is wider than the window (" + over[0] + " > " + over[1] + "): " + over[2].slice(0, 5));
  };
  await wide("1280 px");
  if (!accessKey) {
    // The endpoint answers again (the test flipped it): probe it now from the page.
    await page.click("#endpoints tr[data-endpoint='a0000001'] button:has-text('Probe now')");
    await page.waitForFunction(() => document.querySelectorAll("#queue tbody tr").length === 0, null, { timeout: 10000 })
      .catch(() => fail("probe now did not restore the endpoint"));
    const stats = await page.textContent("#queue-stats");
    if (!stats.includes("recovered 1")) fail("queue stats: " + stats);
    const reqs = await page.$$eval("#requests tbody tr", (trs) => trs.length);
    if (reqs < 3) fail("last requests: " + reqs);
    const after = await page.textContent("#summary");
    if (!after.includes("all 2 endpoints up") || !after.includes("serving from primary")) fail("summary after: " + after);
    await manage(page);
  }
  await page.screenshot({ path: shot, fullPage: true });
  // A phone: every table scrolls inside its card, the page itself does not.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  await wide("390 px");
  await page.screenshot({ path: shot.replace(/\.png$/, "-phone.png"), fullPage: true });
  console.log("browse: ok" + (accessKey ? " (with access key)" : "") + ", screenshot " + shot);
} finally {
  await browser.close();
}
