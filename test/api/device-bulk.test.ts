import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Answer } from './platform-helpers.js';
import { APP_KEY, eui, startTenancy, type Tenancy } from './tenancy-helpers.js';

/**
 * Devices in bulk: import (CSV and JSON, all or nothing, a report per bad line, dry run),
 * export (no keys), moves between applications (no re-join), and the tenants' quotas.
 */

const HEADER = 'devEui,joinEui,name,applicationId,macVersion,deviceClass,appKey,nwkKey,tag.floor';

/** The DevEUI of the n-th device of the big import: 70b3d57e + 8 hex digits. */
function bigEui(n: number): string {
  return `70b3d57e${n.toString(16).padStart(8, '0')}`;
}

async function countDevices(tenancy: Tenancy, applicationId: string): Promise<number> {
  const row = await tenancy.api.database.db
    .selectFrom('devices')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('application_id', '=', applicationId)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

async function importCsv(
  tenancy: Tenancy,
  csv: string,
  query = '',
  token?: string,
): Promise<Answer> {
  const response = await tenancy.api.app.inject({
    method: 'POST',
    url: `/api/v1/devices/import${query}`,
    headers: {
      authorization: `Bearer ${token ?? 'platform-admin-token-0123456789'}`,
      'content-type': 'text/csv',
    },
    payload: csv,
  });
  return {
    status: response.statusCode,
    json: JSON.parse(response.body),
    headers: response.headers,
  };
}

describe('devices in bulk', () => {
  let tenancy: Tenancy;
  let bigApplication: string;

  before(async () => {
    tenancy = await startTenancy();
    bigApplication = (
      await tenancy.admin('POST', '/api/v1/applications', {
        name: 'meters of the whole town',
        tenantId: tenancy.A.tenantId,
      })
    ).id;
  });

  after(async () => {
    await tenancy.api.close();
  });

  it('imports 10,000 devices from CSV: all or nothing, every bad line reported', async () => {
    const good: string[] = [];
    for (let n = 0; n < 10_000; n += 1) {
      good.push(
        `${bigEui(n)},70b3d57ed0000000,meter ${n},${bigApplication},1.0.3,A,${APP_KEY},,${n % 12}`,
      );
    }
    // Bad lines between the good ones (their physical line numbers are what the report says).
    const bad: [number, string, RegExp][] = [
      [10, `zz,70b3d57ed0000000,bad eui,${bigApplication},1.0.3,A,${APP_KEY},,1`, /devEui/],
      [
        500,
        `${bigEui(3)},70b3d57ed0000000,twice,${bigApplication},1.0.3,A,${APP_KEY},,1`,
        /also on line/,
      ],
      [2000, `${eui()},70b3d57ed0000000,no key,${bigApplication},1.0.3,A,,,1`, /appKey is missing/],
      [
        3000,
        `${eui()},70b3d57ed0000000,nowhere,no-such-application,1.0.3,A,${APP_KEY},,1`,
        /application no-such-application does not exist/,
      ],
      [
        4000,
        `${tenancy.A.devEui},70b3d57ed0000000,taken,${bigApplication},1.0.3,A,${APP_KEY},,1`,
        /exists already/,
      ],
      [
        5000,
        `${eui()},70b3d57ed0000000,bad version,${bigApplication},1.2,A,${APP_KEY},,1`,
        /macVersion/,
      ],
      [
        6000,
        `${eui()},70b3d57ed0000000,one key,${bigApplication},1.1.0,A,${APP_KEY},,1`,
        /nwkKey is missing/,
      ],
      [
        7000,
        `${eui()},70b3d57ed0000000,other tenant,${tenancy.B.applicationId},1.0.3,A,${APP_KEY},,1`,
        /does not exist/,
      ],
    ];
    const lines = [...good];
    for (const [at, line] of bad) lines.splice(at, 0, line);
    const csv = `${HEADER}\r\n${lines.join('\r\n')}\r\n`;
    // Physical line of each bad line: the header is line 1.
    const badLines = bad.map(([, line]) => lines.indexOf(line) + 2);
    // As tenant A's owner: B's application does not exist for it.
    const token = tenancy.tokens.owner;

    const dry = await importCsv(tenancy, csv, '?dryRun=true', token);
    assert.equal(dry.status, 200, JSON.stringify(dry.json).slice(0, 500));
    assert.equal(dry.json.dryRun, true);
    assert.equal(dry.json.total, 10_008);
    assert.equal(dry.json.invalid, 8);
    assert.equal(dry.json.created, 0);

    const started = Date.now();
    const refused = await importCsv(tenancy, csv, '', token);
    assert.equal(refused.status, 422);
    assert.equal(refused.json.error, 'IMPORT_REJECTED');
    assert.match(refused.json.message, /8 of 10008 lines are invalid: nothing was written/);
    const report = refused.json.details;
    assert.deepEqual(
      report.errors.map((e: { line: number }) => e.line),
      badLines,
    );
    report.errors.forEach((error: { messages: string[] }, i: number) => {
      assert.match(error.messages.join('; '), bad[i]![2], `line ${badLines[i]}`);
    });
    assert.equal(report.valid, 10_000);
    assert.equal(await countDevices(tenancy, bigApplication), 0, 'nothing partial');

    const fixed = `${HEADER}\n${good.join('\n')}\n`;
    const imported = await importCsv(tenancy, fixed, '', token);
    assert.equal(imported.status, 201, JSON.stringify(imported.json).slice(0, 500));
    assert.deepEqual(
      { ...imported.json, errors: imported.json.errors.length },
      {
        dryRun: false,
        format: 'csv',
        total: 10_000,
        valid: 10_000,
        invalid: 0,
        created: 10_000,
        errors: 0,
      },
    );
    assert.equal(await countDevices(tenancy, bigApplication), 10_000);
    const elapsedMs = Date.now() - started;
    assert.ok(elapsedMs < 30_000, `two imports of 10,000 devices took ${elapsedMs} ms`);

    const one = await tenancy.api.request('GET', `/api/v1/devices/${bigEui(4242)}`);
    assert.equal(one.json.name, 'meter 4242');
    assert.equal(one.json.tenantId, tenancy.A.tenantId);
    assert.deepEqual(one.json.tags, { floor: String(4242 % 12) });
    assert.deepEqual(await tenancy.api.storage.devices.getRootKeys(bigEui(4242)), {
      appKey: new Uint8Array(Buffer.from(APP_KEY, 'hex')),
    });
    const entry = (await tenancy.api.request('GET', '/api/v1/audit?action=device.import&limit=1'))
      .json.entries[0];
    assert.equal(entry.outcome, 'success');
    assert.equal(entry.tenantId, tenancy.A.tenantId);
    assert.equal(entry.details.created, 10_000);
  });

  it('imports JSON with tags and a profile, and reads a semicolon CSV with quotes', async () => {
    const devEui = eui();
    const json = await tenancy.api.request('POST', '/api/v1/devices/import', {
      body: {
        applicationId: tenancy.A.applicationId,
        devices: [
          {
            devEui,
            joinEui: eui(),
            name: 'valve, north',
            macVersion: '1.1.0',
            appKey: APP_KEY,
            nwkKey: APP_KEY,
            deviceProfileId: tenancy.catalogueProfileId,
            tags: { zone: 'north' },
          },
          { devEui: eui(), name: 'bad', colour: 'red' },
        ],
      },
    });
    assert.equal(json.status, 422);
    assert.deepEqual(json.json.details.errors[0].line, 2);
    assert.match(json.json.details.errors[0].messages.join(), /unknown field "colour"/);
    const fixed = await tenancy.api.request('POST', '/api/v1/devices/import', {
      body: {
        applicationId: tenancy.A.applicationId,
        devices: [
          {
            devEui,
            joinEui: eui(),
            name: 'valve, north',
            macVersion: '1.1.0',
            appKey: APP_KEY,
            nwkKey: APP_KEY,
            deviceProfileId: tenancy.catalogueProfileId,
            tags: { zone: 'north' },
          },
        ],
      },
    });
    assert.equal(fixed.status, 201, JSON.stringify(fixed.json));
    const device = (await tenancy.api.request('GET', `/api/v1/devices/${devEui}`)).json;
    assert.equal(device.deviceProfileId, tenancy.catalogueProfileId);
    assert.deepEqual(device.tags, { zone: 'north' });

    const semicolon = await importCsv(
      tenancy,
      `devEui;joinEui;name;macVersion;appKey\n${eui()};${eui()};"pump; ""old"" one";1.0.4;${APP_KEY}\n`,
      `?applicationId=${tenancy.A.applicationId}`,
    );
    assert.equal(semicolon.status, 201, JSON.stringify(semicolon.json));
    const found = await tenancy.api.request('GET', '/api/v1/devices?search=old');
    assert.deepEqual(
      found.json.devices.map((d: { name: string }) => d.name),
      ['pump; "old" one'],
    );
    const header = await importCsv(tenancy, 'devEui,colour\n1,2\n');
    assert.equal(header.status, 400);
    assert.match(header.json.message, /unknown: colour/);
  });

  it('exports the devices as CSV and JSON, never a key', async () => {
    const csv = await tenancy.api.app.inject({
      method: 'GET',
      url: `/api/v1/devices/export?applicationId=${tenancy.A.applicationId}`,
      headers: { authorization: `Bearer ${tenancy.tokens.viewer}` },
    });
    assert.equal(csv.statusCode, 200);
    assert.match(String(csv.headers['content-type']), /^text\/csv/);
    assert.match(String(csv.headers['content-disposition']), /attachment; filename="devices.csv"/);
    const [header, ...rows] = csv.body.trim().split('\r\n');
    assert.equal(
      header,
      'devEui,joinEui,name,applicationId,tenantId,macVersion,deviceClass,activation,deviceProfileId,lastSeenAt,createdAt,updatedAt,tag.site,tag.zone',
    );
    assert.ok(
      rows.some((row) => row.includes('"valve, north"')),
      'quoted',
    );
    assert.ok(!csv.body.toLowerCase().includes(APP_KEY), 'no key');
    const json = await tenancy.api.request(
      'GET',
      `/api/v1/devices/export?format=json&applicationId=${tenancy.A.applicationId}`,
      { token: tenancy.tokens.viewer },
    );
    assert.equal(json.json.devices.length, rows.length);
    assert.ok(!JSON.stringify(json.json).includes(APP_KEY), 'no key');
    // Back in without keys: every line is refused, nothing written.
    const again = await importCsv(tenancy, csv.body);
    assert.equal(again.status, 422);
    assert.ok(
      again.json.details.errors.every((e: { messages: string[] }) =>
        e.messages.some((m) => /appKey is missing/.test(m)),
      ),
    );
  });

  it('moves a device to another application without a new join, and keeps its session', async () => {
    const devEui = eui();
    await tenancy.admin('POST', '/api/v1/devices', {
      devEui,
      name: 'abp meter',
      applicationId: tenancy.A.applicationId,
      macVersion: '1.0.4',
      abp: { devAddr: '26011bda', nwkSKey: APP_KEY, appSKey: APP_KEY },
    });
    const before = await tenancy.api.storage.deviceSessions.get(devEui);
    const moved = await tenancy.api.request('POST', `/api/v1/devices/${devEui}/move`, {
      token: tenancy.tokens.operator,
      body: { applicationId: tenancy.A.otherApplicationId },
    });
    assert.equal(moved.status, 200, JSON.stringify(moved.json));
    assert.equal(moved.json.applicationId, tenancy.A.otherApplicationId);
    const shown = (await tenancy.api.request('GET', `/api/v1/devices/${devEui}`)).json;
    assert.equal(shown.applicationId, tenancy.A.otherApplicationId);
    assert.equal(shown.devAddr, '26011bda');
    assert.deepEqual(await tenancy.api.storage.deviceSessions.get(devEui), before, 'same session');
    assert.ok(tenancy.calls.includes(`deviceChanged ${devEui}`));

    // To another tenant: by the operator only (A's owner does not see B's application).
    const byOwner = await tenancy.api.request('POST', `/api/v1/devices/${devEui}/move`, {
      token: tenancy.tokens.owner,
      body: { applicationId: tenancy.B.applicationId },
    });
    assert.equal(byOwner.status, 400);
    assert.equal(byOwner.json.error, 'UNKNOWN_REFERENCE');
    const byOperator = await tenancy.admin('POST', `/api/v1/devices/${devEui}/move`, {
      applicationId: tenancy.B.applicationId,
    });
    assert.equal(byOperator.tenantId, tenancy.B.tenantId);
    assert.equal(
      (
        await tenancy.api.request('GET', `/api/v1/devices/${devEui}`, {
          token: tenancy.tokens.owner,
        })
      ).status,
      404,
      'now B’s',
    );
  });

  it('enforces the quotas on create, import, move and gateways, with 409 QUOTA_EXCEEDED', async () => {
    const tenant = (
      await tenancy.admin('POST', '/api/v1/tenants', {
        name: 'Tiny',
        quotas: { maxDevices: 3, maxGateways: 1 },
      })
    ).id;
    const application = (
      await tenancy.admin('POST', '/api/v1/applications', { name: 'tiny', tenantId: tenant })
    ).id;
    const device = (n: number) => ({
      devEui: eui(),
      joinEui: eui(),
      name: `d${n}`,
      applicationId: application,
      macVersion: '1.0.3',
      appKey: APP_KEY,
    });
    await tenancy.admin('POST', '/api/v1/devices', device(1));
    const tooMany = await tenancy.api.request('POST', '/api/v1/devices/import', {
      body: { devices: [device(2), device(3), device(4)] },
    });
    assert.equal(tooMany.status, 409);
    assert.equal(tooMany.json.error, 'QUOTA_EXCEEDED');
    assert.deepEqual(tooMany.json.details.quota, {
      quota: 'maxDevices',
      limit: 3,
      used: 1,
      adding: 3,
    });
    assert.equal(await countDevices(tenancy, application), 1, 'nothing written');
    await tenancy.admin('POST', '/api/v1/devices/import', { devices: [device(2), device(3)] });
    const fourth = await tenancy.api.request('POST', '/api/v1/devices', { body: device(4) });
    assert.equal(fourth.status, 409);
    assert.deepEqual(fourth.json, {
      error: 'QUOTA_EXCEEDED',
      message: `tenant ${tenant} may have at most 3 devices (maxDevices): it has 3, 1 more would make 4`,
      details: { quota: 'maxDevices', limit: 3, used: 3, adding: 1 },
    });
    const move = await tenancy.api.request('POST', `/api/v1/devices/${tenancy.A.devEui}/move`, {
      body: { applicationId: application },
    });
    assert.equal(move.status, 409);
    await tenancy.admin('POST', '/api/v1/gateways', {
      gatewayId: eui(),
      name: 'g',
      tenantId: tenant,
    });
    const gateway = await tenancy.api.request('POST', '/api/v1/gateways', {
      body: { gatewayId: eui(), name: 'g2', tenantId: tenant },
    });
    assert.equal(gateway.status, 409);
    assert.equal(gateway.json.details.quota, 'maxGateways');
    // Raised by the operator: room again.
    await tenancy.admin('PATCH', `/api/v1/tenants/${tenant}`, { quotas: { maxDevices: 4 } });
    assert.equal(
      (await tenancy.api.request('POST', '/api/v1/devices', { body: device(5) })).status,
      201,
    );
    // A tenant that still owns objects is not deleted.
    const deleted = await tenancy.api.request('DELETE', `/api/v1/tenants/${tenant}`);
    assert.equal(deleted.status, 409);
    assert.equal(deleted.json.error, 'STILL_REFERENCED');
  });
});
