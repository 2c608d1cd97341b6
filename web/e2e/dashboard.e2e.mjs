// End-to-end test of the dashboard: the real `reai serve` binary with two
// tenants, the built page (web/dist) in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core; nothing is downloaded).
//
//   node web/e2e/dashboard.e2e.mjs --reai build/reai --models build/test-models \
//     --out build/web-e2e --screenshots docs/screenshots
//
// Asserts: sign-in by fragment link (fragment cleared, token in
// sessionStorage), strict CSP and caching headers, the hot-lead board and the
// score stream change within a second of an event, the latency chart draws,
// another tenant's events never appear, an expired token leads back to
// sign-in, the prediction panels answer with numbers, ranges and model
// versions for a tenant with a pipeline. Measures frame times with 5,000 leads and ~50 updates/s (reported,
// not asserted). Exits non-zero on the first failed check.
import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const reai = resolve(args.reai ?? 'build/reai');
const models = resolve(args.models ?? 'build/test-models');
const outDir = resolve(args.out ?? 'build/web-e2e');
const shotsDir = resolve(args.screenshots ?? 'docs/screenshots');
const staticDir = resolve(args.static ?? 'web/dist');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

let failures = 0;
function check(cond, what) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures += 1;
    console.log(`FAIL ${what}`);
  }
  return cond;
}
function fatal(msg) {
  console.error(`FAIL ${msg}`);
  process.exitCode = 1;
  throw new Error(msg);
}

for (const [p, what] of [
  [reai, 'the reai binary'],
  [join(models, 'leads', 'metadata.json'), 'the fixture lead model (CTest fixture train_fixture_model)'],
  [join(staticDir, 'index.html'), 'the built dashboard (scripts/web-build)'],
  [chromiumPath, 'Chromium (Debian package chromium, scripts/install-deps)'],
]) {
  if (!existsSync(p)) fatal(`missing ${what}: ${p}`);
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const secret = randomBytes(24).toString('hex');
const mint = (tenant) =>
  execFileSync(reai, ['token', '--tenant', tenant, '--role', 'agent', '--jwt-secret', secret, '--ttl', '1h']).toString().trim();
// A token that expired a minute ago, signed with the server's key.
function expiredToken(tenant) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ tenant, role: 'agent', iat: now - 3600, exp: now - 60 })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(join(tmpdir(), 'reai-web-e2e-'));
// The prediction routes' artefacts, made by the real CLI beside a copy of the
// fixture lead model: a deal model and a pipeline history for a third tenant
// (the small CRM fixture's t_cyclone), and the market forecast of the Texas
// panel the demo ships.
const modelDir = join(dataDir, 'models');
cpSync(models, modelDir, { recursive: true });
const crm = (f) => resolve('tests/fixtures/crm_small', f);
const crmArgs = ['--contacts', crm('contacts.csv'), '--events', crm('events.csv'), '--stages', crm('opportunity_stages.csv')];
const quiet = { stdio: ['ignore', 'ignore', 'pipe'] };
execFileSync(reai, ['train', 'deals', ...crmArgs, '--out', join(modelDir, 'deals'), '--threads', '1'], quiet);
// The lead model comes from the demo history (6,500 contacts), not the small
// fixture: the fixture's 600 contacts give a model that leans on the hour of
// day a lead was created, so whether the scripted lead below turns hot would
// depend on when the test runs. The demo model scores it hot at every hour.
const demo = (f) => resolve('fixtures/demo', f);
rmSync(join(modelDir, 'leads'), { recursive: true, force: true });
execFileSync(reai, ['train', 'leads', '--contacts', demo('contacts.csv'), '--events', demo('events.csv'),
  '--stages', demo('opportunity_stages.csv'), '--out', join(modelDir, 'leads'), '--threads', '1'], quiet);
execFileSync(reai, ['forecast', '--data', resolve('fixtures/market/txhousing.csv'), '--series', 'city', '--time', 'year,month',
  '--metrics', 'median,sales', '--horizon', '3', '--threads', '1', '--quiet', '--out', join(modelDir, 'markets', 'forecast.csv')], quiet);
execFileSync(reai, ['import', '--data-dir', dataDir, ...crmArgs, '--tenant', 't_cyclone'], quiet);
// The pricing outlook's listing: 300 of the demo's Ames homes, valued by an
// AVM trained on them (no search: a second), imported for t_cyclone.
const homes = join(dataDir, 'ames.csv');
writeFileSync(homes, readFileSync(resolve('fixtures/demo/listings.csv'), 'utf8').split('\n').slice(0, 301).join('\n') + '\n');
execFileSync(reai, ['value', 'train', '--data', homes, '--target', 'List_Price', '--out', join(modelDir, 'value'),
  '--budget', '0', '--threads', '1'], quiet);
execFileSync(reai, ['import', 'listings', '--data-dir', dataDir, '--tenant', 't_cyclone', '--listings', homes,
  '--price-column', 'List_Price', '--id-column', 'listing_id', '--model-dir', modelDir], quiet);
mkdirSync(outDir, { recursive: true });
mkdirSync(shotsDir, { recursive: true });
const serverLog = join(outDir, 'server.log');
let log = '';
function startServer() {
  const child = spawn(
    reai,
    ['serve', '--port', String(port), '--data-dir', dataDir, '--model-dir', modelDir, '--jwt-secret', secret, '--static-dir', staticDir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  return child;
}
let server = startServer();

async function waitForServer() {
  for (let i = 0; ; ++i) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {}
    if (i > 300 || server.exitCode !== null) fatal(`reai serve did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let browser;
async function cleanup() {
  await browser?.close().catch(() => {});
  if (server.exitCode === null) server.kill('SIGTERM');
  writeFileSync(serverLog, log);
  rmSync(dataDir, { recursive: true, force: true });
}

async function api(method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

try {
  await waitForServer();
  const tokenA = mint('e2e_brokerage_a');
  const tokenB = mint('e2e_brokerage_b');

  // Headers: strict CSP on the page, revalidated index, immutable hashed assets.
  const index = await fetch(`${base}/`);
  const csp = index.headers.get('content-security-policy') ?? '';
  check(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), `strict CSP on / (${csp})`);
  check(index.headers.get('cache-control') === 'no-cache', 'index.html is no-cache');
  const html = await index.text();
  check(!/<script(?![^>]*\bsrc=)[^>]*>/.test(html), 'index.html has no inline script');
  const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
  const assetRes = asset ? await fetch(base + asset) : null;
  check(!!assetRes && /immutable/.test(assetRes.headers.get('cache-control') ?? ''), `hashed asset ${asset} is immutable`);

  // Some history before the page opens: leads of both tenants, with
  // profiles from eager to idle (the screenshots show a working day).
  const sources = ['referral', 'zillow', 'website', 'open_house', 'facebook', 'realtor.com'];
  const eager = ['sms_in', 'call_in', 'tour_request', 'appointment_booked'];
  const browsing = ['page_view', 'property_view', 'email_open', 'property_save'];
  for (let i = 0; i < 36; ++i) {
    const id = `lead-${1040 + i * 7}`;
    const keen = i % 3 === 0;
    await api('PUT', `/api/contacts/${id}`, tokenA, {
      source: sources[i % sources.length], lead_type: i % 4 === 3 ? 'seller' : 'buyer',
      pre_approved: keen || i % 5 === 0, timeline_months: keen ? 1 : 3 + (i % 9), budget: 250000 + 25000 * (i % 12),
      has_phone: i % 4 !== 1, has_email: true, beds_wanted: 2 + (i % 3),
    });
    const steps = keen ? eager : browsing.slice(0, 1 + (i % 4));
    for (const type of steps) {
      const property = type.startsWith('property') || type === 'tour_request' ? { property_id: `mls-${2000 + i}`, value: 300000 + 10000 * i } : {};
      const r = await api('POST', '/api/events', tokenA, { contact_id: id, type, ...property });
      if (r.body?.band === 'hot') break;
    }
  }
  await api('POST', '/api/events', tokenB, { contact_id: 'b-only-lead-0', type: 'sms_in' });

  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const cspErrors = [];
  const pageErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));

  // Sign in by link: the token moves to sessionStorage, the fragment is cleared.
  await page.goto(`${base}/#token=${tokenA}`);
  await page.waitForSelector('#conn.conn-live', { timeout: 10000 });
  check(!page.url().includes('token='), `the token is gone from the address bar (${page.url()})`);
  check((await page.evaluate(() => sessionStorage.getItem('reai_token'))) === tokenA, 'the token is in sessionStorage');
  check((await page.textContent('#tenant')) === 'e2e_brokerage_a', 'the header names the tenant');
  await page.waitForSelector('#board-body tr', { timeout: 5000 });
  // Activity while the page is open fills the stream.
  for (let i = 0; i < 14; ++i) {
    const id = `lead-${1040 + ((i * 5) % 36) * 7}`;
    await api('POST', '/api/events', tokenA, { contact_id: id, type: ['email_click', 'property_view', 'sms_in', 'saved_search'][i % 4] });
  }

  // A lead turns hot: the board and the stream must show it within a second.
  const hotLead = 'e2e-hot-lead';
  await api('PUT', `/api/contacts/${hotLead}`, tokenA, {
    pre_approved: true, timeline_months: 1, source: 'referral', lead_type: 'buyer', budget: 450000,
    has_phone: true, has_email: true, beds_wanted: 3,
  });
  const sequence = ['sms_in', 'call_in', 'tour_request', 'appointment_booked', 'appointment_showed', 'tour_request', 'form_submit'];
  let hot = null;
  let streamMs = NaN;
  for (const type of sequence) {
    const before = await page.getAttribute('#stream li[data-seq]', 'data-seq').catch(() => null);
    const r = await api('POST', '/api/events', tokenA, type === 'tour_request' ? { contact_id: hotLead, type, property_id: 'mls-4471', value: 425000 } : { contact_id: hotLead, type });
    const t0 = Date.now();
    if (r.status !== 200) fatal(`POST /api/events answered ${r.status}`);
    const changed = await page
      .waitForFunction((b) => document.querySelector('#stream li[data-seq]')?.getAttribute('data-seq') !== b, before, { timeout: 1000 })
      .then(() => true, () => false);
    if (changed && Number.isNaN(streamMs)) streamMs = Date.now() - t0;
    if (r.body.band === 'hot') {
      hot = r.body;
      break;
    }
  }
  check(!Number.isNaN(streamMs), `the score stream changed within a second of an event (${streamMs} ms)`);
  if (!check(hot !== null, `the lead turned hot (score ${hot?.score})`)) fatal('the fixture model never scored the test lead hot');
  const t0 = Date.now();
  const onBoard = await page
    .waitForFunction((id) => !!document.querySelector(`#board-body tr[data-lead="${id}"]`), hotLead, { timeout: 1000 })
    .then(() => true, () => false);
  check(onBoard, `the hot-lead board shows ${hotLead} within a second (${Date.now() - t0} ms)`);
  const streamText = await page.textContent('#stream');
  check(streamText.includes(hotLead), 'the score stream lists the lead');
  check(!!(await page.$('#stream li.turned-hot')), 'the stream marks the lead that turned hot');
  check(!!(await page.$('#toasts .toast')), 'a "turned hot" alert appears');
  await page.screenshot({ path: join(shotsDir, 'live.png') });

  // Another tenant's events never reach this page.
  const secretLead = 'b-secret-lead';
  for (const type of ['sms_in', 'tour_request', 'call_in']) {
    check((await api('POST', '/api/events', tokenB, { contact_id: secretLead, type })).status === 200, `tenant B event ${type} accepted`);
  }
  await api('POST', '/api/events', tokenA, { contact_id: 'a-after-b', type: 'sms_in' });
  await page.waitForFunction(() => document.querySelector('#stream')?.textContent?.includes('a-after-b'), null, { timeout: 3000 }).catch(() => {});
  await page.click('.segmented button:has-text("All")');
  const everything = await page.evaluate(() => document.body.textContent ?? '');
  check(!everything.includes(secretLead) && !everything.includes('b-only-lead-0'), "tenant B's leads never appear on tenant A's page");

  // Lead detail (Escape dismisses the alerts).
  await page.keyboard.press('Escape');
  check((await page.$$('#toasts .toast')).length === 0, 'Escape dismisses the alerts');
  await page.click(`#board-body a.lead-link:text-is("${hotLead}")`);
  await page.waitForSelector('#lead-chart canvas', { timeout: 5000 });
  await page.waitForSelector('#lead-events li', { timeout: 5000 });
  check((await page.textContent('#lead-score'))?.trim() === String(hot.score), 'lead detail shows the current score');
  check((await page.$$('#lead-events li')).length >= 3, 'lead detail lists the events');
  const detailText = await page.textContent('#view-lead');
  check(/No listings yet/.test(detailText), 'matches panel says "No listings yet" before listings are imported');
  // Listings imported while serving: picked up after an admin reload, then
  // the panel lists ranked listings with their match score.
  execFileSync(reai, ['import', 'listings', '--data-dir', dataDir, '--model-dir', models, '--tenant', 'e2e_brokerage_a',
    '--listings', resolve('tests/fixtures/ames_small/ames.csv'), '--price-column', 'Sale_Price'], { stdio: 'ignore' });
  const admin = execFileSync(reai, ['token', '--tenant', 'e2e_brokerage_a', '--role', 'admin', '--jwt-secret', secret, '--ttl', '1h']).toString().trim();
  check((await api('POST', '/api/admin/reload', admin)).status === 200, 'admin reload picks up the imported listings');
  await page.keyboard.press('Escape');
  await page.reload();
  // The catalog loads on the server's matching worker after the reload; until
  // then matches answer 503 "listings are loading" and the panel asks again
  // (slow under ASan with the other tests running, hence the long wait).
  await page.waitForSelector('ul.matches li', { timeout: 30000 }).catch(() => {});
  const matchesText = (await page.textContent('ul.matches').catch(() => '')) ?? '';
  check(/ames-\d{4}/.test(matchesText) && /match \d+%/.test(matchesText), `matches panel lists ranked listings (${matchesText.slice(0, 80)})`);
  const panelText = (await page.textContent('#view-lead')) ?? '';
  check(panelText.includes('Matched to the stated budget, $450,000'), 'matches panel says the budget they are held to');
  // Saving the top home moves the matches (a saved home leaves the list):
  // the match_update on the stream refreshes the panel without a reload.
  const topHome = /ames-\d{4}/.exec(matchesText)?.[0];
  if (topHome) {
    const saved = await api('POST', '/api/events', tokenA, { contact_id: hotLead, type: 'property_save', property_id: topHome });
    check(saved.status === 200, `saving ${topHome} accepted`);
    const refreshed = await page
      .waitForFunction((id) => { const t = document.querySelector('ul.matches')?.textContent ?? ''; return /ames-\d{4}/.test(t) && !t.includes(id); }, topHome, { timeout: 15000 })
      .then(() => true, () => false);
    check(refreshed, `the matches panel drops ${topHome} once it is saved, without a reload`);
    const timeline = await page
      .waitForFunction((id) => (document.querySelector('#lead-events')?.textContent ?? '').includes(id), topHome, { timeout: 15000 })
      .then(() => true, () => false);
    check(timeline, `the event timeline shows the save of ${topHome}`);
  }
  await page.screenshot({ path: join(shotsDir, 'lead.png'), fullPage: true });

  // Distribution.
  await page.keyboard.press('3');
  await page.waitForSelector('#histogram .hist-col', { timeout: 5000 });
  check((await page.textContent('#by-source')).includes('referral'), 'distribution by source lists the referral lead');
  await page.screenshot({ path: join(shotsDir, 'distribution.png'), fullPage: true });

  // Performance: the latency chart draws.
  await page.keyboard.press('4');
  await page.waitForSelector('#latency-chart canvas', { timeout: 5000 });
  await page.waitForTimeout(2500);
  const inked = await page.evaluate(() => {
    const c = document.querySelector('#latency-chart canvas');
    const ctx = c.getContext('2d');
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n += 1;
    return n;
  });
  check(inked > 500, `the latency chart drew (${inked} pixels inked)`);
  check((await page.textContent('#perf-p99')) !== '–', `p99 tile shows ${await page.textContent('#perf-p99')}`);
  await page.screenshot({ path: join(shotsDir, 'performance.png') });

  // Health and markets.
  await page.keyboard.press('5');
  await page.waitForSelector('#health-lights .light', { timeout: 5000 });
  check((await page.$$('#health-lights .light-ok')).length >= 4, 'store, bus, cache, model lights are green');
  await page.screenshot({ path: join(shotsDir, 'health.png') });
  await page.keyboard.press('6');
  await page.waitForFunction(() => {
    const v = document.querySelector('#view-markets');
    return !!v && !v.textContent.includes('Checking');
  }, null, { timeout: 5000 });
  // Tenant A has no pipeline: a deal model but no open deal, no agent history
  // yet; the market forecast is shared.
  const marketsText = await page.textContent('#view-markets');
  check(/Nothing yet[^]*no opportunity history/.test(marketsText),
    `tenant A: the deals panel says there is no pipeline yet, not "no open deals" (${marketsText.slice(0, 200)})`);
  check((marketsText.match(/Not trained yet/g) ?? []).length === 1, 'tenant A: agents say "Not trained yet" (no pipeline history)');
  check(/Austin/.test(await page.textContent('#predictions-markets')), 'tenant A: the market forecast lists Austin');
  // The shipped panel ends years ago: the panel says how old its data is.
  const ageText = await page.textContent('#predictions-markets .data-age');
  check(/^Forecast from data through \d{4}-\d{2}, [\d,]+ months old: that market, not today's\.$/.test(ageText ?? ''),
    `the market forecast says how old its data is (${ageText})`);
  // A tenant with a pipeline: numbers with ranges and model versions.
  const tokenC = mint('t_cyclone');
  const pipelinePage = await context.newPage();
  await pipelinePage.goto(`${base}/#token=${tokenC}`);
  await pipelinePage.waitForSelector('#conn.conn-live', { timeout: 10000 });
  await pipelinePage.keyboard.press('6');
  await pipelinePage.waitForFunction(() => {
    const v = document.querySelector('#view-markets');
    return !!v && !v.textContent.includes('Checking');
  }, null, { timeout: 10000 });
  const pipelineText = await pipelinePage.textContent('#view-markets');
  check(!/Not trained yet/.test(pipelineText), `t_cyclone: every panel answers (${pipelineText.slice(0, 300)})`);
  const versions = await pipelinePage.$$eval('#view-markets [data-model-version]', (els) => els.map((e) => e.getAttribute('data-model-version')));
  check(versions.length === 3 && versions[0].startsWith('deals-') && versions[2].startsWith('markets-'), `model versions shown: ${versions.join(', ')}`);
  const dealRows = await pipelinePage.$$eval('#predictions-deals tbody tr', (trs) => trs.map((tr) => tr.textContent));
  const pClose = await pipelinePage.$$eval('#predictions-deals .p-close', (els) => els.map((e) => Number(e.textContent.replace('%', ''))));
  check(dealRows.length > 0 && pClose.every((p) => p >= 0 && p <= 100), `open deals with P(close) in 0-100% (${pClose.slice(0, 5).join(', ')})`);
  check((await pipelinePage.$$('#predictions-agents tbody tr')).length > 0, 'agents listed with expected closings and coaching');
  // The small fixture gives a degenerate deal model: its stage prior answers, said above the table.
  const fallback = await pipelinePage.textContent('#predictions-deals .fallback-reason').catch(() => null);
  check(/^Stage averages, not a model: the deal model is degenerate \(only \d+ (closed|lost)/.test(fallback ?? ''),
    `the deals panel says its numbers are the stage prior and why (${fallback})`);
  const coaching = await pipelinePage.textContent('#predictions-agents .coaching');
  check(/^[A-Z][^]*\.( |$)/.test(coaching ?? '') && !/\[significant/.test(coaching ?? ''), `coaching reads as sentences (${coaching})`);
  // Pricing outlook: a stored listing priced with the Austin forecast.
  await pipelinePage.waitForFunction(() => document.querySelectorAll('#pricing-region option').length > 1, null, { timeout: 5000 });
  await pipelinePage.fill('#pricing-listing', 'ames-0001');
  await pipelinePage.selectOption('#pricing-region', 'Austin');
  await pipelinePage.click('#pricing-form button');
  await pipelinePage.waitForSelector('#pricing-result .pricing-headline', { timeout: 10000 });
  const headline = await pipelinePage.textContent('#pricing-result .pricing-headline');
  const [price, low, high] = (headline.match(/\$[\d,]+/g) ?? []).map((t) => Number(t.replace(/[$,]/g, '')));
  check(/^List at \$[\d,]+ \(80%: \$[\d,]+ – \$[\d,]+\)$/.test(headline) && low <= price && price <= high,
    `the pricing outlook recommends a price inside its 80% range (${headline})`);
  const marketLine = await pipelinePage.textContent('#pricing-result .pricing-market');
  check(/^Austin median [+−][\d.]+% from \d{4}-\d{2} to \d{4}-\d{2} \(80%: /.test(marketLine ?? ''), `the market move is named (${marketLine})`);
  await pipelinePage.waitForTimeout(500);
  const pricingInked = await pipelinePage.$eval('#pricing-chart canvas', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ++n;
    return n;
  });
  check(pricingInked > 200, `the pricing chart drew (${pricingInked} pixels inked)`);
  await pipelinePage.screenshot({ path: join(shotsDir, 'markets.png'), fullPage: true });
  await pipelinePage.close();

  // Frame time with 5,000 leads and ~50 updates per second.
  await page.keyboard.press('1');
  const bulk = [];
  for (let i = 0; i < 5000; ++i) bulk.push({ contact_id: `bulk-${i}`, type: i % 7 === 0 ? 'sms_in' : 'page_view' });
  for (let i = 0; i < bulk.length; i += 1000) {
    const r = await api('POST', '/api/events', tokenA, bulk.slice(i, i + 1000));
    if (r.status !== 200) fatal(`bulk POST answered ${r.status}`);
  }
  await page.waitForFunction(() => Number((document.querySelector('#kpi-leads')?.textContent ?? '0').replace(/,/g, '')) >= 5000, null, { timeout: 20000 });
  const leadsOnPage = await page.textContent('#kpi-leads');
  check(true, `the page holds ${leadsOnPage} leads`);
  const seqBefore = Number(await page.getAttribute('#stream li[data-seq]', 'data-seq'));
  // Main-thread work of the page from Chromium's own counters (less sensitive to
  // a loaded machine than frame intervals).
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const counters = async () =>
    Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  const before = await counters();
  await page.evaluate(() => {
    window.__frames = [];
    let last = performance.now();
    const loop = (t) => {
      window.__frames.push(t - last);
      last = t;
      if (!window.__stopFrames) requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  });
  const seconds = 6;
  const started = Date.now();
  const kinds = ['sms_in', 'email_click', 'tour_request', 'call_in', 'property_save', 'form_submit'];
  let n = 0;
  while (Date.now() - started < seconds * 1000) {
    // Paced by the clock (75 events/s, about 55 score changes/s), not by
    // how fast each request returns on a loaded machine.
    const due = Math.max(1, Math.round(((Date.now() - started) / 1000) * 75) - n);
    const batch = [];
    for (let j = 0; j < due; ++j, ++n) batch.push({ contact_id: `bulk-${(n * 37) % 5000}`, type: kinds[n % kinds.length] });
    await api('POST', '/api/events', tokenA, batch);
    await new Promise((r) => setTimeout(r, 100));
  }
  const frames = await page.evaluate(() => {
    window.__stopFrames = true;
    return window.__frames.slice(1);
  });
  const elapsed = (Date.now() - started) / 1000;
  const after = await counters();
  const busy = (name) => +(((after[name] - before[name]) * 1000) / elapsed).toFixed(1);
  const seqAfter = Number(await page.getAttribute('#stream li[data-seq]', 'data-seq'));
  frames.sort((a, b) => a - b);
  const q = (p) => frames[Math.min(frames.length - 1, Math.floor(p * frames.length))];
  const result = {
    leads_on_page: Number(leadsOnPage.replace(/,/g, '')),
    updates_per_second: +((seqAfter - seqBefore) / elapsed).toFixed(1),
    events_posted_per_second: +(n / elapsed).toFixed(1),
    frames: frames.length,
    fps: +(frames.length / elapsed).toFixed(1),
    frame_ms: { p50: +q(0.5).toFixed(1), p95: +q(0.95).toFixed(1), p99: +q(0.99).toFixed(1), max: +frames.at(-1).toFixed(1) },
    long_frames_over_50ms: frames.filter((f) => f > 50).length,
    main_thread_ms_per_s: {
      task: busy('TaskDuration'),
      script: busy('ScriptDuration'),
      layout: busy('LayoutDuration'),
      style: busy('RecalcStyleDuration'),
    },
  };
  writeFileSync(join(outDir, 'frame-time.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`info frame time with ${result.leads_on_page} leads at ${result.updates_per_second} updates/s: ${JSON.stringify(result)}`);
  check(frames.length > seconds * 5, `the page kept drawing frames under load (${frames.length} frames)`);
  await page.screenshot({ path: join(shotsDir, 'live-5000-leads.png') });
  // The performance view after the load: the charts show it.
  await page.keyboard.press('4');
  await page.waitForTimeout(1500);
  await page.screenshot({ path: join(shotsDir, 'performance.png') });

  // The server restarts: the page shows it, reconnects by itself (the server
  // asks it to resync: its seq is from the previous life) and goes on live.
  await page.keyboard.press('1');
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  const sawDown = await page
    .waitForSelector('#conn.conn-reconnecting', { timeout: 5000 })
    .then(() => true, () => false);
  check(sawDown, 'the connection indicator shows the server is gone');
  server = startServer();
  await waitForServer();
  await page.waitForSelector('#conn.conn-live', { timeout: 20000 });
  const afterRestart = 'lead-after-restart';
  await api('POST', '/api/events', tokenA, { contact_id: afterRestart, type: 'sms_in' });
  const resumed = await page
    .waitForFunction((id) => document.querySelector('#stream')?.textContent?.includes(id), afterRestart, { timeout: 2000 })
    .then(() => true, () => false);
  check(resumed, 'after a server restart the page is live again without a refresh');

  // Phone width.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const phonePage = await phone.newPage();
  await phonePage.goto(`${base}/#token=${tokenA}`);
  await phonePage.waitForSelector('#board-body tr[data-lead]', { timeout: 10000 });
  const overflow = await phonePage.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `no sideways scrolling at phone width (overflow ${overflow} px)`);
  await phonePage.screenshot({ path: join(shotsDir, 'phone.png') });
  await phone.close();

  // An expired token leads back to sign-in with a clear message.
  const other = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const expiredPage = await other.newPage();
  await expiredPage.goto(`${base}/#token=${expiredToken('e2e_brokerage_a')}`);
  await expiredPage.waitForSelector('#signin-error:not([hidden])', { timeout: 5000 });
  check(/expired/i.test(await expiredPage.textContent('#signin-error')), 'an expired token shows the sign-in page with "expired"');
  await expiredPage.screenshot({ path: join(shotsDir, 'signin.png') });
  // Paste a valid token.
  await expiredPage.fill('#token-input', tokenA);
  await expiredPage.click('#signin-button');
  await expiredPage.waitForSelector('#conn.conn-live', { timeout: 10000 });
  check(true, 'signing in by pasting a token reaches the live view');
  await other.close();

  check(cspErrors.length === 0, `no Content-Security-Policy violations ${cspErrors.join(' | ')}`);
  check(pageErrors.length === 0, `no uncaught page errors ${pageErrors.join(' | ')}`);
} catch (e) {
  failures += 1;
  console.error(`FAIL ${e.stack ?? e}`);
} finally {
  await cleanup();
}
if (failures) {
  console.error(`${failures} check(s) failed; server log: ${serverLog}`);
  process.exit(1);
}
console.log('all dashboard checks passed');
