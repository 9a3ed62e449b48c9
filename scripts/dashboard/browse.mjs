// Drives the dashboard in headless Chromium (playwright-core, Debian's /usr/bin/chromium).
//   node browse.mjs URL SCREENSHOT [ACCESS_KEY]
// Checks: the live data renders every endpoint and the queue state; "Probe now" takes effect
// (the recovered endpoint leaves the queue); with an access key, the page asks for it first.
import { chromium } from "playwright-core";

const [url, shot, accessKey] = process.argv.slice(2);
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
  if (!accessKey) {
    // The endpoint answers again (the test flipped it): probe it now from the page.
    await page.click("#endpoints tr[data-endpoint='a0000001'] button:has-text('Probe now')");
    await page.waitForFunction(() => document.querySelectorAll("#queue tbody tr").length === 0, null, { timeout: 10000 })
      .catch(() => fail("probe now did not restore the endpoint"));
    const stats = await page.textContent("#queue-stats");
    if (!stats.includes("recovered 1")) fail("queue stats: " + stats);
    const reqs = await page.$$eval("#requests tbody tr", (trs) => trs.length);
    if (reqs < 3) fail("last requests: " + reqs);
  }
  await page.screenshot({ path: shot, fullPage: true });
  console.log("browse: ok" + (accessKey ? " (with access key)" : "") + ", screenshot " + shot);
} finally {
  await browser.close();
}
