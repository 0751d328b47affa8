// tests/browser/dashboard.mjs: the live dashboard and the report in a real browser (headless
// Chromium driven by puppeteer-core, both installed by scripts/setup.sh; nothing is fetched here).
//
// A real regmix-coordinator (with --metrics) and two regmix-workers run a synthetic sweep on
// loopback whose target (a command launcher) reports a loss curve. Checked:
//   1. the /api/ endpoints: shapes, cursor paging of results (every result exactly once), the runs
//      page cap, 400/404/405 answers, HEAD; 16 connections at most per client address;
//   2. the dashboard: loads with no console error or page error, shows the running sweep, its
//      charts carry one point per finished run (each domain chart) and per fit (fit quality), the
//      points grow while runs finish, and at the end equal the sweep's runs and fits;
//   3. `regmixctl report`: the file names no external URL, opens from disk with the network off
//      and every request refused, makes no request, and every chart renders with its points
//      (one per run, one per fit, one per out-of-fold prediction, one bar per domain and series).
// Screenshots go to ARTIFACTS (the build dir): dashboard-mid.png, dashboard-end.png, report.png.
//
// usage: node dashboard.mjs COORDINATOR WORKER REGMIXCTL ARTIFACTS_DIR
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const [COORD, WORKER, CTL, ARTIFACTS] = process.argv.slice(2);
const CHROMIUM = process.env.REGMIX_CHROMIUM || "/usr/bin/chromium";
const T = fs.mkdtempSync(path.join(os.tmpdir(), "regmix-browser-"));
fs.mkdirSync(ARTIFACTS, { recursive: true });
const procs = [];
let browser = null;
let failed = false;

function note(s) { process.stderr.write(`# ${s}\n`); }
function fail(s) {
  failed = true;
  throw new Error(s);
}
function expect(what, ok, detail) {
  if (!ok) fail(`${what}${detail !== undefined ? ": " + detail : ""}`);
  note(`ok: ${what}`);
}

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  for (const p of procs) try { p.kill("SIGKILL"); } catch (e) { /* gone */ }
  if (!failed) fs.rmSync(T, { recursive: true, force: true });
  else {
    for (const f of fs.readdirSync(T).filter((f) => f.endsWith(".log"))) {
      const lines = fs.readFileSync(path.join(T, f), "utf8").split("\n").slice(-20).join("\n");
      process.stderr.write(`---- tail of ${f}\n${lines}\n`);
    }
    note(`kept ${T}`);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on("error", reject);
  });
}

function start(bin, args, log) {
  const out = fs.openSync(path.join(T, log), "a");
  const p = spawn(bin, args, { stdio: ["ignore", out, out] });
  procs.push(p);
  return p;
}

async function until(what, timeoutMs, fn) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > end) fail(`${what}: not within ${timeoutMs / 1000} s (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const [wport, cport, hport] = [await freePort(), await freePort(), await freePort()];
const WEP = `tcp://127.0.0.1:${wport}`, CEP = `tcp://127.0.0.1:${cport}`;
const BASE = `http://127.0.0.1:${hport}`;
const ctl = (...a) => execFileSync(CTL, ["--coordinator", CEP, ...a], { encoding: "utf8" });

async function api(p, init) {
  const r = await fetch(BASE + p, init);
  return { status: r.status, type: r.headers.get("content-type"), body: await r.text() };
}
async function json(p) {
  const r = await api(p);
  if (r.status !== 200) fail(`GET ${p}: HTTP ${r.status} ${r.body}`);
  return JSON.parse(r.body);
}

const RUNS = 40;
const SPEC = `name: browser
domains:
  - {name: web, tokens: 5.0e9, train: "d/web_*.bin"}
  - {name: code, tokens: 3.0e9, train: "d/code_*.bin"}
  - {name: books, tokens: 1.5e9, train: "d/books_*.bin"}
  - {name: math, tokens: 0.5e9, train: "d/math_*.bin"}
sampling: {runs: ${RUNS}, seed: 7}
proxy:
  trainer: synthetic
  synthetic: {optimum: {web: 0.4, code: 0.3, books: 0.2, math: 0.1}, noise: 0.002, delay_ms: 350}
regression:
  target: mean
  model: quadratic
  simulate: 5000
  top_k: 50
  refit_every: 4
  seed: 3
  convergence: {min_runs: 16, min_spearman: 0.8, stable_refits: 2, l1_tol: 0.05}
  on_converge: keep
target:
  launch: auto
  launcher: command
  command: ["sh", "${T}/target.sh", "{progress_fd}"]
`;

try {
  let puppeteer;
  try {
    puppeteer = (await import("puppeteer-core")).default;
  } catch (e) {
    fail(`puppeteer-core is not in tests/browser/node_modules: run scripts/setup.sh (${e.message})`);
  }
  for (const f of [COORD, WORKER, CTL]) expect(`${path.basename(f)} is built`, fs.existsSync(f));
  expect(`chromium at ${CHROMIUM} (scripts/setup.sh installs it)`, fs.existsSync(CHROMIUM));
  start(COORD, ["--db", path.join(T, "regmix.db"), "--workers", WEP, "--clients", CEP,
                "--metrics", `127.0.0.1:${hport}`, "--heartbeat-ms", "200", "--allow-commands",
                "--log-level", "info"], "coordinator.log");
  await until("coordinator answers /healthz", 15000, async () => (await api("/healthz")).status === 200);
  // 2. the page is open before anything runs: it must show the sweep arriving
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warn") problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
  await page.goto(`${BASE}/?poll=300`, { waitUntil: "load" });
  await page.waitForSelector("body[data-rendered]", { timeout: 10000 });
  expect("the dashboard says there are no sweeps yet",
         (await page.$eval("#sweeps", (e) => e.textContent)).includes("no sweeps yet"));

  fs.writeFileSync(path.join(T, "spec.yaml"), SPEC);
  // The target: eight training steps 0.6 s apart on the progress fd ($1), then its result.
  fs.writeFileSync(path.join(T, "target.sh"), `i=0
while [ $i -lt 8 ]; do
  i=$((i + 1))
  echo "{\\"event\\": \\"step\\", \\"step\\": $((i * 10)), \\"loss\\": $((40 - i * 3)).5}" >&"$1"
  sleep 0.6
done
echo '{"event": "result", "losses": {"web": 2.5}}' >&"$1"
`);
  start(WORKER, ["--coordinator", WEP, "--slots", "2", "--gpus", "none", "--workdir",
                 path.join(T, "w1"), "--name", "w1", "--log-level", "info"], "worker-w1.log");
  start(WORKER, ["--coordinator", WEP, "--slots", "2", "--gpus", "none", "--workdir",
                 path.join(T, "w2"), "--name", "w2", "--log-level", "info"], "worker-w2.log");
  const sw = ctl("submit", path.join(T, "spec.yaml")).trim();
  expect("submitted", /^sw\d+$/.test(sw), sw);

  // Mid-sweep: sample the page while runs finish; each sample's points match its own data.
  const samples = [];
  let shotMid = false;
  await until("the sweep ends", 60000, async () => {
    const s = await page.evaluate(() => ({
      results: +document.body.getAttribute("data-results"),
      fits: +document.body.getAttribute("data-fits"),
      domainPts: [0, 1, 2, 3].map((j) =>
        document.querySelectorAll(`svg[data-chart="domain-${j}"] .pt`).length),
      fitPts: document.querySelectorAll('svg[data-chart="fit-quality"] .pt').length,
      predPts: document.querySelectorAll('svg[data-chart="predicted"] .pt').length,
      predWhiskers: document.querySelectorAll('svg[data-chart="predicted"] .whisker').length,
      title: (document.getElementById("sweep-title") || {}).textContent || "",
      workers: document.querySelectorAll("#workers tr.worker").length,
      runsRows: document.querySelectorAll("#runs tr.run").length,
    }));
    samples.push(s);
    for (const n of s.domainPts)
      if (n !== s.results) fail(`a domain chart has ${n} points for ${s.results} results`);
    if (s.fitPts !== s.fits) fail(`fit quality has ${s.fitPts} points for ${s.fits} fits`);
    if (s.predPts !== s.fits || s.predWhiskers > s.predPts)
      fail(`the predicted chart has ${s.predPts} points, ${s.predWhiskers} whiskers for ${s.fits} fits`);
    if (!shotMid && s.results >= RUNS / 3 && s.fits >= 2 && s.title.includes("running")) {
      await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-mid.png"), fullPage: true });
      shotMid = true;
      note(`mid-sweep screenshot at ${s.results} results, ${s.fits} fits`);
    }
    const st = await json(`/api/sweeps/${sw}`);
    const log = fs.readFileSync(path.join(T, "coordinator.log"), "utf8");
    if (log.includes("event=launch_failed")) fail(`the target launch failed: ${log.match(/event=launch_failed.*/)[0]}`);
    const open = st.sweep.runs.queued + st.sweep.runs.leased + st.sweep.runs.running;
    return open === 0 && st.targets.length && st.targets[0].state === "done" && s.results === RUNS &&
           s.fits === st.fits.length && (st.targets[0].curve || []).length >= 3;
  });
  const mid = samples.filter((s) => s.results > 0 && s.results < RUNS);
  const distinct = new Set(mid.map((s) => s.results));
  expect("the page showed the sweep running", samples.some((s) => s.title.includes(sw) && s.title.includes("running")));
  expect("the points grew as runs finished (distinct mid-sweep counts)", distinct.size >= 3, [...distinct].join(","));
  for (let i = 1; i < samples.length; i++)
    if (samples[i].results < samples[i - 1].results) fail("the number of points went down");
  expect("a mid-sweep screenshot was taken", shotMid);
  expect("the workers table lists both workers", samples.some((s) => s.workers === 2));
  expect("the runs table shows a page of runs", samples.some((s) => s.runsRows === 25));
  // The end: one point per run in every domain chart, one per fit, one per out-of-fold run.
  await page.waitForFunction((n) => +document.body.getAttribute("data-results") === n, { timeout: 5000 }, RUNS);
  const doc = await json(`/api/sweeps/${sw}`);
  await page.waitForFunction((n) => document.querySelectorAll('svg[data-chart="targets"] .pt').length === n,
                             { timeout: 5000 }, doc.targets[0].curve.length);
  const end = await page.evaluate(() => ({
    domain: [0, 1, 2, 3].map((j) => document.querySelectorAll(`svg[data-chart="domain-${j}"] .pt`).length),
    fit: document.querySelectorAll('svg[data-chart="fit-quality"] .pt').length,
    oof: document.querySelectorAll('svg[data-chart="oof"] .pt').length,
    bars: document.querySelectorAll('svg[data-chart="proposal"] .pt').length,
    target: document.querySelectorAll('svg[data-chart="targets"] .pt').length,
    pred: document.querySelectorAll('svg[data-chart="predicted"] .pt').length,
    whiskers: document.querySelectorAll('svg[data-chart="predicted"] .whisker').length,
    realised: [...document.querySelectorAll('svg[data-chart="predicted"] .hline title')].map((t) => t.textContent),
    gainChart: document.querySelectorAll('svg[data-chart="gain"]').length,
    proposalLine: (document.getElementById("proposal-line") || {}).textContent || "",
    note: [...document.querySelectorAll(".note")].map((e) => e.textContent).join(" "),
  }));
  expect(`every domain chart has ${RUNS} points`, end.domain.every((n) => n === RUNS), end.domain.join(","));
  expect(`fit quality has one point per fit (${doc.fits.length})`, end.fit === doc.fits.length);
  expect("out-of-fold chart has one point per run of the latest fit", end.oof === doc.oof.actual.length && end.oof === doc.fits[doc.fits.length - 1].runs_used, `${end.oof}`);
  expect("proposal chart: prior and proposal bars for 4 domains", end.bars === 8, end.bars);
  expect("target curve drawn", end.target === doc.targets[0].curve.length && end.target >= 3, end.target);
  // The prediction at the proposal per refit: one whisker per fit with a finite 95 % interval,
  // the target's realised objective as a line, no expected-gain chart (not an active sweep).
  const withIv = doc.fits.filter((f) => Array.isArray(f.predicted_interval) &&
      f.predicted_interval.every((v) => typeof v === "number") && typeof f.predicted === "number");
  const lastFit = doc.fits[doc.fits.length - 1];
  expect(`predicted chart: one point per fit (${doc.fits.length}), one whisker per finite interval (${withIv.length})`,
         end.pred === doc.fits.length && end.whiskers === withIv.length && withIv.length >= 2,
         `${end.pred} points, ${end.whiskers} whiskers`);
  expect("predicted chart: the target's realised objective as a line",
         typeof doc.targets[0].objective === "number" &&
         end.realised.length === 1 && end.realised[0] === `target (realised): ${doc.targets[0].objective}`,
         `${end.realised.join("; ")} (objective ${doc.targets[0].objective})`);
  expect("no expected-gain chart without expected_gain", end.gainChart === 0 && doc.fits.every((f) => f.expected_gain === null));
  expect("the proposal line: the latest fit's interval (95 %) and verdict",
         end.proposalLine.includes(`proposal of fit ${lastFit.fit_no}: predicted`) &&
         end.proposalLine.includes("(95 %)") && end.proposalLine.includes(`verdict ${lastFit.verdict}`),
         end.proposalLine);
  expect("the page says what the interval means", end.note.includes("where one run at the proposal should land, 95 %"), end.note);
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-end.png"), fullPage: true });
  expect("no console errors, page errors or failed requests", problems.length === 0, problems.join("; "));

  // 1. the API
  let all = [], after = 0, pages = 0;
  for (;;) {
    const r = await json(`/api/sweeps/${sw}/results?after=${after}&limit=7`);
    all = all.concat(r.results);
    pages++;
    if (!r.more) break;
    after = r.next;
  }
  expect(`results in pages of 7: every run once (${pages} pages)`,
         all.length === RUNS && new Set(all.map((x) => x.idx)).size === RUNS);
  const runs = await json(`/api/sweeps/${sw}/runs?offset=5&limit=100000`);
  expect("runs page: offset and the 200 cap", runs.runs[0].idx === 5 && runs.limit === 200 && runs.runs.length === RUNS - 5 && runs.total === RUNS);
  expect("a sweep by name", (await json("/api/sweeps/browser")).sweep.sweep_id === sw);
  expect("unknown sweep: 404", (await api("/api/sweeps/sw999999")).status === 404);
  expect("unknown endpoint: 404", (await api(`/api/sweeps/${sw}/nope`)).status === 404);
  expect("bad limit: 400", (await api(`/api/sweeps/${sw}/results?limit=x`)).status === 400);
  expect("negative after: 400", (await api(`/api/sweeps/${sw}/results?after=-1`)).status === 400);
  expect("POST: 405", (await api("/api/sweeps", { method: "POST", body: "x" })).status === 405);
  expect("HEAD /: 200", (await api("/", { method: "HEAD" })).status === 200);
  expect("workers", (await json("/api/workers")).workers.length === 2);
  // The listener's limit per client address (16): of 20 idle connections from here, at least 4
  // are closed at once; once they are gone the listener answers again.
  const idle = [];
  let refused = 0;
  for (let i = 0; i < 20; i++) {
    const sk = net.connect(hport, "127.0.0.1");
    sk.on("close", () => refused++);
    sk.on("error", () => {});
    idle.push(sk);
  }
  await until("4 of 20 idle connections refused", 5000, async () => refused >= 4);
  // (the page and fetch may hold keep-alive connections from this address too: at least 4)
  expect("at most 16 of 20 connections from one address kept", 20 - refused <= 16, refused);
  idle.forEach((sk) => sk.destroy());
  await until("the listener answers once they are closed", 5000, async () => (await api("/healthz")).status === 200);

  // 3. the report, from disk, offline
  const out = path.join(T, "report.html");
  const printed = ctl("report", sw, "--out", out).trim();
  expect("report prints its path", printed === out, printed);
  const html = fs.readFileSync(out, "utf8");
  const urls = html.match(/\b(?:https?|wss?|ftp):\/\/[^\s"'<>)]*/g) || [];
  expect("the report names no external URL", urls.length === 0, urls.join(" "));
  const ctx = await browser.createBrowserContext();
  const rp = await ctx.newPage();
  await rp.setViewport({ width: 1400, height: 1000 });
  const rproblems = [], requests = [];
  rp.on("console", (m) => { if (m.type() === "error" || m.type() === "warn") rproblems.push(`console: ${m.text()}`); });
  rp.on("pageerror", (e) => rproblems.push(`page error: ${e.message}`));
  await rp.setOfflineMode(true);
  await rp.setRequestInterception(true);
  rp.on("request", (r) => {
    if (r.url().startsWith("file://")) return r.continue();
    requests.push(r.url());
    r.abort();
  });
  await rp.goto(`file://${out}`, { waitUntil: "load" });
  await rp.waitForSelector("body[data-rendered]", { timeout: 10000 });
  const rep = await rp.evaluate(() => {
    const charts = [...document.querySelectorAll("svg.chart")];
    return {
      charts: charts.map((c) => ({ id: c.getAttribute("data-chart"), pts: c.querySelectorAll(".pt").length,
                                   whiskers: c.querySelectorAll(".whisker").length,
                                   empty: c.querySelectorAll(".empty").length })),
      runsRows: document.querySelectorAll("#runs tr.run").length,
    };
  });
  note(`report charts: ${rep.charts.map((c) => `${c.id}=${c.pts}`).join(" ")}`);
  const by = Object.fromEntries(rep.charts.map((c) => [c.id, c]));
  expect("the report draws 10 charts, none empty", rep.charts.length === 10 && rep.charts.every((c) => c.pts > 0 && c.empty === 0));
  expect("report: the predicted objective with one whisker per finite interval",
         by.predicted.pts === doc.fits.length && by.predicted.whiskers === withIv.length, by.predicted.whiskers);
  expect("report: one point per run in each domain chart", [0, 1, 2, 3].every((j) => by[`domain-${j}`].pts === RUNS));
  expect("report: one point per fit", by["fit-quality"].pts === doc.fits.length);
  expect("report: movement has a point per fit after the first", by["fit-moved"].pts === doc.fits.length - 1);
  expect("report: out-of-fold points", by.oof.pts === doc.oof.actual.length);
  expect("report: target curve", by.targets.pts === doc.targets[0].curve.length);
  expect("report: runs table page", rep.runsRows === 25);
  expect("the report made no request", requests.length === 0, requests.join(" "));
  expect("the report: no console errors", rproblems.length === 0, rproblems.join("; "));
  await rp.screenshot({ path: path.join(ARTIFACTS, "report.png"), fullPage: true });
  await ctx.close();

  // The same report with the document's optional keys changed, as an older coordinator (no
  // intervals) and an active sweep (expected gain, gain_tol) would write them: the page shows
  // what is there and nothing for what is not, without an error.
  const m = html.match(/(<script id="regmix-data" type="application\/json">)([\s\S]*?)(<\/script>)/);
  expect("the report embeds its data", m !== null);
  async function variant(name, edit) {
    const data = JSON.parse(m[2]);
    edit(data.doc);
    const file = path.join(T, `report-${name}.html`);
    fs.writeFileSync(file, html.replace(m[0], () => m[1] + JSON.stringify(data).replace(/</g, "\\u003c") + m[3]));
    const vctx = await browser.createBrowserContext();
    const vp = await vctx.newPage();
    const errs = [];
    vp.on("pageerror", (e) => errs.push(e.message));
    vp.on("console", (c) => { if (c.type() === "error") errs.push(c.text()); });
    await vp.goto(`file://${file}`, { waitUntil: "load" });
    await vp.waitForSelector("body[data-rendered]", { timeout: 10000 });
    const r = await vp.evaluate(() => ({
      pred: document.querySelectorAll('svg[data-chart="predicted"] .pt').length,
      whiskers: document.querySelectorAll('svg[data-chart="predicted"] .whisker').length,
      gain: document.querySelectorAll('svg[data-chart="gain"] .pt').length,
      gainTol: [...document.querySelectorAll('svg[data-chart="gain"] .hline title')].map((t) => t.textContent),
      gainCol: [...document.querySelectorAll("#fits th")].some((t) => t.textContent === "expected gain"),
      line: (document.getElementById("proposal-line") || {}).textContent || "",
    }));
    await vctx.close();
    expect(`report variant ${name}: no page or console error`, errs.length === 0, errs.join("; "));
    return r;
  }
  const old = await variant("no-intervals", (d) => d.fits.forEach((f) => { delete f.predicted_interval; }));
  expect("a report without intervals: points, no whiskers, no interval in the proposal line",
         old.pred === doc.fits.length && old.whiskers === 0 && !old.line.includes("95 %") && old.gain === 0 && !old.gainCol,
         JSON.stringify(old));
  const act = await variant("gain", (d) => {
    d.gain_tol = 0.002;
    d.fits.forEach((f, i) => { f.expected_gain = 0.01 / (i + 1); f.proposal_from = "active"; });
  });
  expect("a report with expected gains: one gain point per fit, gain_tol as a line, a gain column",
         act.gain === doc.fits.length && act.gainTol.length === 1 && act.gainTol[0] === "gain_tol: 0.002" && act.gainCol &&
         act.line.includes("expected gain of one more run") && act.line.includes("(gain_tol 0.002)") &&
         act.line.includes("chosen by active"), JSON.stringify(act));

  // 4. regmixctl fit --report on the RegMix paper's 512 runs: out of fold and test set
  const P = process.env.REGMIX_PAPER_DIR;
  for (const mode of ["cv", "test"]) {
    const fout = path.join(T, `fit-${mode}.html`);
    const args = ["fit", "--mixtures", `${P}/train_mixture_1m.csv`, "--losses",
                  `${P}/train_pile_loss_1m.csv`, "--target", "metric/the_pile_pile_cc_val_loss",
                  "--prior", `${P}/prior.csv`, "--model", "linear", "--simulate", "20000",
                  "--report", fout];
    if (mode === "test")
      args.push("--test-mixtures", `${P}/test_mixture_1m.csv`, "--test-losses", `${P}/test_pile_loss_1m.csv`);
    const said = execFileSync(CTL, args, { encoding: "utf8" });
    expect(`fit --report (${mode}) says where`, said.includes(`report     ${fout}`));
    const fctx = await browser.createBrowserContext();
    const fp = await fctx.newPage();
    await fp.setViewport({ width: 1400, height: 1000 });
    const fproblems = [], freqs = [];
    fp.on("pageerror", (e) => fproblems.push(e.message));
    fp.on("console", (m) => { if (m.type() === "error") fproblems.push(m.text()); });
    await fp.setOfflineMode(true);
    await fp.setRequestInterception(true);
    fp.on("request", (r) => { if (r.url().startsWith("file://")) return r.continue(); freqs.push(r.url()); r.abort(); });
    await fp.goto(`file://${fout}`, { waitUntil: "load" });
    await fp.waitForSelector("body[data-rendered]", { timeout: 10000 });
    const fc = await fp.evaluate(() => [...document.querySelectorAll("svg.chart")].map((c) => ({
      id: c.getAttribute("data-chart"), pts: c.querySelectorAll(".pt").length,
      empty: c.querySelectorAll(".empty").length })));
    const fb = Object.fromEntries(fc.map((c) => [c.id, c]));
    const want = mode === "cv" ? 512 : 256;
    if (mode === "cv") {
      // The offline fit's interval (out-of-fold RMSE) in the facts line, as regmixctl fit says it.
      const facts = await fp.$eval(".facts", (e) => e.textContent);
      expect("fit report (cv): the facts line gives the proposal's 95 % interval",
             said.includes("95% interval of a run [") &&
             /a run there lands in -?[0-9.e-]+ to -?[0-9.e-]+ \(95 %\)/.test(facts), facts);
    }
    expect(`fit report (${mode}): ${want} predicted-against-actual points`, fb.oof && fb.oof.pts === want, fb.oof && fb.oof.pts);
    expect(`fit report (${mode}): 17 domains x (prior, proposal) bars`, fb.proposal.pts === 34, fb.proposal.pts);
    expect(`fit report (${mode}): 17 domain charts of 512 runs`,
           fc.filter((c) => /^domain-/.test(c.id) && c.pts === 512).length === 17);
    expect(`fit report (${mode}): no empty chart, no request, no error`,
           fc.every((c) => c.empty === 0) && freqs.length === 0 && fproblems.length === 0,
           fproblems.concat(freqs).join("; "));
    if (mode === "test")
      await fp.screenshot({ path: path.join(ARTIFACTS, "fit-report.png"), fullPage: false });
    await fctx.close();
  }
  note(`screenshots in ${ARTIFACTS}`);
} catch (e) {
  failed = true;
  process.stderr.write(`FAIL: ${e.message}\n`);
} finally {
  await cleanup();
}
process.exit(failed ? 1 : 0);
