// Drives `inregion serve` with Cloudflare's official TypeScript SDK (npm `cloudflare`,
// version pinned in tests/sdk_typescript.rs).
//
// Run by tests/sdk_typescript.rs with:
//   INREGION_SDK         absolute path of the installed package's directory
//   INREGION_BASE        http://127.0.0.1:PORT
//   INREGION_TOKEN       the dev token (every permission on the dev account)
//   INREGION_READ_TOKEN  a token with DLS: Read only
//   INREGION_ADMIN_TOKEN the admin token (/__inregion)
// Exits non-zero on the first failed check; prints "N passed, 0 failed" at the end.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const sdk = await import(pathToFileURL(join(process.env.INREGION_SDK, 'index.mjs')).href);
const Cloudflare = sdk.default;
const BASE = process.env.INREGION_BASE;
const ACCOUNT = '023e105f4ecef8ad9ca31a8372d0c353';
const PREFIX = 'a1b2c3d4-e5f6-7890-abcd-ef1234567890';
const V6_PREFIX = '6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e';

// Default retries on purpose: `x-should-retry: false` must stop the SDK retrying 409s.
const cf = new Cloudflare({ apiToken: process.env.INREGION_TOKEN, baseURL: `${BASE}/client/v4` });
const reader = new Cloudflare({
  apiToken: process.env.INREGION_READ_TOKEN,
  baseURL: `${BASE}/client/v4`,
});
let passed = 0;

function check(name, cond, detail = '') {
  if (!cond) {
    console.error(`FAILED: ${name} ${detail}`);
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }
  passed += 1;
  console.log(`ok - ${name}`);
}

async function expectError(name, errorClass, status, code, fn) {
  try {
    await fn();
  } catch (e) {
    check(`${name}: ${errorClass.name}`, e instanceof errorClass, `${e?.constructor?.name}: ${e}`);
    check(`${name}: status`, e.status === status, `${e.status}`);
    check(`${name}: code`, e.errors?.[0]?.code === code, JSON.stringify(e.errors));
    check(`${name}: envelope`, e.error?.success === false && e.error?.result === null, JSON.stringify(e.error));
    return;
  }
  check(`${name}: raised ${errorClass.name}`, false, 'no exception');
}

async function all(page) {
  const out = [];
  for await (const item of page) out.push(item);
  return out;
}

async function admin(path) {
  const r = await fetch(`${BASE}/__inregion${path}`, {
    method: 'POST',
    headers: { 'X-Inregion-Admin-Token': process.env.INREGION_ADMIN_TOKEN },
  });
  check(`admin ${path}`, r.status === 200, `${r.status} ${await r.text()}`);
}

// ---- DLS regions
const regions = await all(cf.dls.regions.list({ account_id: ACCOUNT, per_page: 5 }));
const keys = regions.map((r) => r.region_key);
check('regions: auto-paginated across pages of 5', keys.length > 5 && new Set(keys).size === keys.length, `${keys}`);
check('regions: managed ones present', ['eu', 'us', 'de'].every((k) => keys.includes(k)), `${keys}`);
const eu = await cf.dls.regions.get('eu', { account_id: ACCOUNT });
check('regions: get by key', eu.region_key === 'eu' && eu.name === 'Europe', JSON.stringify(eu));
const byId = await cf.dls.regions.get(eu.id, { account_id: ACCOUNT });
check('regions: get by id', byId.region_key === 'eu', JSON.stringify(byId));
await expectError('regions: unknown key', sdk.NotFoundError, 404, 1110, () =>
  cf.dls.regions.get('nowhere', { account_id: ACCOUNT }),
);

// ---- DLS prefix bindings
const bindings = cf.dls.regionalServices.prefixBindings;
const created = [];
for (let i = 0; i < 12; i++) {
  const b = await bindings.create({
    account_id: ACCOUNT,
    prefix_id: PREFIX,
    cidr: `203.0.113.${i * 16}/28`,
    region_key: 'eu',
  });
  created.push(b);
}
check('bindings: create echoes the fields',
  created[0].cidr === '203.0.113.0/28' && created[0].region_key === 'eu' && created[0].prefix_id === PREFIX,
  JSON.stringify(created[0]));
const b6 = await bindings.create({
  account_id: ACCOUNT,
  prefix_id: V6_PREFIX,
  cidr: '2001:DB8:1000:0::/48',
  region_key: 'us',
});
check('bindings: IPv6 CIDR echoed canonical', b6.cidr === '2001:db8:1000::/48', JSON.stringify(b6));
const got = await bindings.get(created[0].id, { account_id: ACCOUNT });
check('bindings: get', got.id === created[0].id && got.cidr === '203.0.113.0/28', JSON.stringify(got));
const listed = await all(bindings.list({ account_id: ACCOUNT, per_page: 5 }));
check('bindings: auto-paginated list has every binding once',
  listed.length === 13 && new Set(listed.map((b) => b.id)).size === 13, `${listed.length}`);
const edited = await bindings.edit(created[1].id, { account_id: ACCOUNT, region_key: 'us' });
check('bindings: edit', edited.region_key === 'us' && edited.id === created[1].id, JSON.stringify(edited));
await bindings.delete(created[2].id, { account_id: ACCOUNT });
await expectError('bindings: get deleted', sdk.NotFoundError, 404, 1109, () =>
  bindings.get(created[2].id, { account_id: ACCOUNT }),
);
await expectError('bindings: duplicate', sdk.ConflictError, 409, 1108, () =>
  bindings.create({ account_id: ACCOUNT, prefix_id: PREFIX, cidr: '203.0.113.0/28', region_key: 'eu' }),
);
await expectError('bindings: bad CIDR', sdk.BadRequestError, 400, 1102, () =>
  bindings.create({ account_id: ACCOUNT, prefix_id: PREFIX, cidr: '203.0.113.0', region_key: 'eu' }),
);
await expectError('bindings: read-only token cannot create', sdk.PermissionDeniedError, 403, 10000, () =>
  reader.dls.regionalServices.prefixBindings.create({
    account_id: ACCOUNT, prefix_id: PREFIX, cidr: '203.0.113.240/28', region_key: 'eu',
  }),
);
const readable = await all(reader.dls.regionalServices.prefixBindings.list({ account_id: ACCOUNT }));
check('bindings: read-only token lists', readable.length === 12, `${readable.length}`);
await expectError('bindings: another account', sdk.PermissionDeniedError, 403, 10000, () =>
  all(cf.dls.regionalServices.prefixBindings.list({ account_id: 'f'.repeat(32) })),
);

// ---- Addressing: prefixes and service bindings
const prefixes = await all(cf.addressing.prefixes.list({ account_id: ACCOUNT }));
check('prefixes: list', prefixes.some((p) => p.id === PREFIX), JSON.stringify(prefixes.map((p) => p.id)));
const p = await cf.addressing.prefixes.get(PREFIX, { account_id: ACCOUNT });
check('prefixes: get', p.cidr === '203.0.112.0/22' && p.account_id === ACCOUNT, JSON.stringify(p));
let sb = await cf.addressing.prefixes.serviceBindings.get(b6.id, { account_id: ACCOUNT, prefix_id: V6_PREFIX });
check('service bindings: same id, provisioning',
  sb.provisioning?.state === 'provisioning' && sb.cidr === '2001:db8:1000::/48', JSON.stringify(sb));

// ---- Address maps and the gate (§9)
const maps = cf.addressing.addressMaps;
await expectError('address maps: gated create', sdk.ConflictError, 409, 1301, () =>
  maps.create({ account_id: ACCOUNT, description: 'x', ips: ['2001:db8:1000::1'] }),
);
check('address maps: nothing created', (await all(maps.list({ account_id: ACCOUNT }))).length === 0);
const m = await maps.create({ account_id: ACCOUNT, description: 'ts', ips: ['203.0.115.1'] });
check('address maps: create', m.description === 'ts' && m.ips?.[0]?.ip === '203.0.115.1', JSON.stringify(m));
await expectError('address maps: gated PUT ip', sdk.ConflictError, 409, 1301, () =>
  maps.ips.update('2001:db8:1000::1', { account_id: ACCOUNT, address_map_id: m.id }),
);
await admin(`/bindings/${b6.id}/activate`);
sb = await cf.addressing.prefixes.serviceBindings.get(b6.id, { account_id: ACCOUNT, prefix_id: V6_PREFIX });
check('service bindings: active after activation', sb.provisioning?.state === 'active', JSON.stringify(sb));
await maps.ips.update('2001:db8:1000::1', { account_id: ACCOUNT, address_map_id: m.id });
const gotMap = await maps.get(m.id, { account_id: ACCOUNT });
check('address maps: PUT ip after activation',
  gotMap.ips.map((i) => i.ip).sort().join(',') === '2001:db8:1000::1,203.0.115.1', JSON.stringify(gotMap.ips));
await maps.edit(m.id, { account_id: ACCOUNT, enabled: true });
await expectError('address maps: delete while enabled', sdk.BadRequestError, 400, 1304, () =>
  maps.delete(m.id, { account_id: ACCOUNT }),
);
await maps.edit(m.id, { account_id: ACCOUNT, enabled: false });
await maps.delete(m.id, { account_id: ACCOUNT });
await expectError('address maps: get deleted', sdk.NotFoundError, 404, 1303, () =>
  maps.get(m.id, { account_id: ACCOUNT }),
);

// ---- injected faults: the SDK retries 429 and 5xx (x-should-retry: true) by default
async function addFault(rule) {
  const r = await fetch(`${BASE}/__inregion/faults`, {
    method: 'POST',
    headers: { 'X-Inregion-Admin-Token': process.env.INREGION_ADMIN_TOKEN, 'Content-Type': 'application/json' },
    body: JSON.stringify(rule),
  });
  const text = await r.text();
  check(`faults: add ${rule.status}`, r.status === 200, `${r.status} ${text}`);
  return JSON.parse(text).result;
}
for (const status of [429, 503]) {
  const f = await addFault({ method: 'GET', path: '/client/v4/accounts/*/dls/regions/*', status, count: 1, retry_after: 0 });
  const eu = await cf.dls.regions.get('eu', { account_id: ACCOUNT });
  const rules = await (await fetch(`${BASE}/__inregion/faults`, {
    headers: { 'X-Inregion-Admin-Token': process.env.INREGION_ADMIN_TOKEN },
  })).json();
  const applied = rules.result.find((x) => x.id === f.id).applied;
  check(`faults: injected ${status} retried by the SDK`, eu.region_key === 'eu' && applied === 1, `applied ${applied}`);
}
const noRetry = new sdk.Cloudflare({ apiToken: process.env.INREGION_TOKEN, baseURL: `${BASE}/client/v4`, maxRetries: 0 });
await addFault({ method: 'GET', path: '/client/v4/accounts/*/dls/regions/*', status: 429, count: 1 });
await expectError('faults: 429 reaches a client without retries', sdk.RateLimitError, 429, 971, () =>
  noRetry.dls.regions.get('eu', { account_id: ACCOUNT }),
);

console.log(`${passed} passed, 0 failed`);
