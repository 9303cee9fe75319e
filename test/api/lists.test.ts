import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { APP_KEY, eui, startTenancy, type Tenancy } from './tenancy-helpers.js';

/**
 * Lists: cursor pagination (`limit`, `cursor` -> `nextCursor`), `sort`, filters, and the errors
 * of a bad query, the same on every list.
 */
describe('lists: cursor pagination, sort and filters', () => {
  let tenancy: Tenancy;
  const names = ['Mairie', 'école', 'Stade', 'ateliers', 'Piscine', 'Gymnase', 'cimetière'];

  before(async () => {
    tenancy = await startTenancy();
    for (const name of names) {
      await tenancy.admin('POST', '/api/v1/applications', {
        name,
        tenantId: tenancy.A.tenantId,
      });
      tenancy.api.clock.advance(1000);
    }
  });

  after(async () => {
    await tenancy.api.close();
  });

  /** Every page of a list, following nextCursor. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read the rows' fields directly
  async function walk(url: string, key: string, token?: string): Promise<any[][]> {
    // biome-ignore lint/suspicious/noExplicitAny: see above
    const pages: any[][] = [];
    let cursor: string | null = null;
    do {
      const separator = url.includes('?') ? '&' : '?';
      const answer = await tenancy.api.request(
        'GET',
        cursor === null ? url : `${url}${separator}cursor=${encodeURIComponent(cursor)}`,
        token === undefined ? {} : { token },
      );
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      pages.push(answer.json[key]);
      cursor = answer.json.nextCursor;
    } while (cursor !== null && pages.length < 50);
    return pages;
  }

  it('pages with a cursor, in the default order, without repeating or missing a row', async () => {
    const url = `/api/v1/applications?tenantId=${tenancy.A.tenantId}`;
    const whole = (await tenancy.api.request('GET', url)).json;
    assert.equal(whole.nextCursor, null);
    const pages = await walk(`${url}&limit=3`, 'applications');
    assert.deepEqual(
      pages.map((page) => page.length),
      [3, 3, 3],
    );
    assert.deepEqual(pages.flat(), whole.applications);
  });

  it('sorts by a field, either way, and a cursor keeps its sort', async () => {
    const url = `/api/v1/applications?tenantId=${tenancy.A.tenantId}&sort=-name&limit=4`;
    const pages = await walk(url, 'applications');
    const sorted = pages.flat().map((a) => a.name);
    assert.deepEqual(sorted, [...sorted].sort().reverse());
    const first = (await tenancy.api.request('GET', url)).json;
    // A row added before the cursor's position does not shift the next page.
    await tenancy.admin('POST', '/api/v1/applications', {
      name: 'ZZZ first of all',
      tenantId: tenancy.A.tenantId,
    });
    const next = (
      await tenancy.api.request('GET', `${url}&cursor=${encodeURIComponent(first.nextCursor)}`)
    ).json;
    assert.deepEqual(next.applications, pages[1]);
    const otherSort = await tenancy.api.request(
      'GET',
      `/api/v1/applications?sort=name&cursor=${encodeURIComponent(first.nextCursor)}`,
    );
    assert.equal(otherSort.status, 400);
    assert.match(otherSort.json.message, /continues sort=-name/);
  });

  it('answers a bad query with 400 and what is wrong', async () => {
    const cases: [string, RegExp][] = [
      ['/api/v1/devices?cursor=nonsense', /not a cursor/],
      ['/api/v1/devices?limit=0', /limit/],
      ['/api/v1/devices?sort=colour', /sort/],
      ['/api/v1/devices?colour=red', /additional|colour/],
      ['/api/v1/gateways?tag=no-colon', /tag/],
      [`/api/v1/devices?offset=2&cursor=${'x'.repeat(10)}`, /cursor and offset|cursor/],
    ];
    for (const [url, message] of cases) {
      const answer = await tenancy.api.request('GET', url);
      assert.equal(answer.status, 400, url);
      assert.equal(answer.json.error, 'BAD_REQUEST', url);
      assert.match(answer.json.message, message, url);
    }
    const validation = await tenancy.api.request('GET', '/api/v1/applications?limit=x');
    assert.ok(Array.isArray(validation.json.details), 'the failing fields');
    const media = await tenancy.api.app.inject({
      method: 'POST',
      url: '/api/v1/applications',
      headers: {
        authorization: 'Bearer platform-admin-token-0123456789',
        'content-type': 'application/xml',
      },
      payload: '<name>x</name>',
    });
    assert.equal(media.statusCode, 415);
    assert.equal(JSON.parse(media.body).error, 'UNSUPPORTED_MEDIA_TYPE');
    const huge = await tenancy.api.request('POST', '/api/v1/applications', {
      body: { name: 'x'.repeat(2_000_000) },
    });
    assert.equal(huge.status, 413);
    assert.equal(huge.json.error, 'PAYLOAD_TOO_LARGE');
  });

  it('filters devices by search, tag, application and profile, and pages them by name', async () => {
    for (let n = 0; n < 5; n += 1) {
      await tenancy.admin('POST', '/api/v1/devices', {
        devEui: eui(),
        joinEui: eui(),
        name: `Compteur ${n} 50%_off`,
        applicationId: tenancy.A.otherApplicationId,
        macVersion: '1.0.3',
        appKey: APP_KEY,
        tags: { floor: String(n % 2) },
      });
    }
    const token = tenancy.tokens.viewer;
    const search = await tenancy.api.request('GET', '/api/v1/devices?search=compteur', { token });
    assert.equal(search.json.devices.length, 5, 'any case');
    const literal = await tenancy.api.request('GET', '/api/v1/devices?search=0%25_', { token });
    assert.equal(literal.json.devices.length, 5, '% and _ are literal');
    const none = await tenancy.api.request('GET', '/api/v1/devices?search=0%25x', { token });
    assert.equal(none.json.devices.length, 0);
    const tagged = await tenancy.api.request('GET', '/api/v1/devices?tag=floor:1', { token });
    assert.deepEqual(tagged.json.devices.map((d: { name: string }) => d.name).sort(), [
      'Compteur 1 50%_off',
      'Compteur 3 50%_off',
    ]);
    const byApplication = await tenancy.api.request(
      'GET',
      `/api/v1/devices?applicationId=${tenancy.A.applicationId}`,
      { token },
    );
    assert.deepEqual(
      byApplication.json.devices.map((d: { devEui: string }) => d.devEui),
      [tenancy.A.devEui],
    );
    const byProfile = await tenancy.api.request(
      'GET',
      `/api/v1/devices?deviceProfileId=${tenancy.A.deviceProfileId}`,
      { token },
    );
    assert.equal(byProfile.json.devices.length, 1);
    const pages = await walk('/api/v1/devices?sort=name&limit=2', 'devices', token);
    const ordered = pages.flat().map((d) => d.name);
    assert.equal(ordered.length, 6);
    assert.deepEqual(ordered, [...ordered].sort());
  });

  it('filters gateways (shared, tag, search) and profiles (search, catalogue)', async () => {
    const token = tenancy.tokens.operator;
    const shared = await tenancy.api.request('GET', '/api/v1/gateways?shared=true', { token });
    assert.deepEqual(
      shared.json.gateways.map((g: { gatewayId: string }) => g.gatewayId).sort(),
      [tenancy.A.sharedGatewayId, tenancy.B.sharedGatewayId].sort(),
    );
    const mine = await tenancy.api.request('GET', '/api/v1/gateways?shared=false', { token });
    assert.deepEqual(
      mine.json.gateways.map((g: { gatewayId: string }) => g.gatewayId),
      [tenancy.A.gatewayId],
    );
    const profiles = await tenancy.api.request('GET', '/api/v1/device-profiles', { token });
    assert.deepEqual(
      profiles.json.deviceProfiles.map((p: { id: string }) => p.id).sort(),
      [tenancy.A.deviceProfileId, tenancy.catalogueProfileId].sort(),
    );
    const searched = await tenancy.api.request('GET', '/api/v1/device-profiles?search=CATALOG', {
      token,
    });
    assert.deepEqual(
      searched.json.deviceProfiles.map((p: { id: string }) => p.id),
      [tenancy.catalogueProfileId],
    );
  });

  it('pages events, the audit log and the platform lists the same way', async () => {
    for (let n = 0; n < 4; n += 1) {
      await tenancy.api.storage.events.append({
        devEui: tenancy.A.devEui,
        applicationId: tenancy.A.applicationId,
        type: 'up',
        time: '2026-03-01T09:00:00.000Z',
        body: { fCnt: n + 2 },
      });
    }
    const events = await walk(`/api/v1/devices/${tenancy.A.devEui}/events?limit=2`, 'events');
    const ids = events.flat().map((e) => e.id);
    assert.equal(ids.length, 5);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => b - a),
      'newest first',
    );
    const audit = await walk('/api/v1/audit?limit=7', 'entries');
    const auditIds = audit.flat().map((e) => e.id);
    assert.equal(new Set(auditIds).size, auditIds.length);
    assert.deepEqual(
      auditIds,
      [...auditIds].sort((a, b) => b - a),
    );
    for (const [url, key] of [
      ['/api/v1/tenants?limit=1', 'tenants'],
      ['/api/v1/users?limit=1&sort=email', 'users'],
      ['/api/v1/api-keys?limit=2&sort=-name', 'apiKeys'],
      ['/api/v1/device-profiles?limit=1', 'deviceProfiles'],
      ['/api/v1/gateways?limit=1', 'gateways'],
      [`/api/v1/devices/${tenancy.A.devEui}/queue?limit=1`, 'items'],
    ] as const) {
      const pages = await walk(url, key);
      const rows = pages.flat();
      const whole = (await tenancy.api.request('GET', url.replace(/limit=\d+/, 'limit=1000'))).json[
        key
      ];
      assert.deepEqual(rows, whole, url);
    }
    const tenants = await tenancy.api.request('GET', '/api/v1/tenants?kind=commune&search=feu');
    assert.deepEqual(
      tenants.json.tenants.map((t: { id: string }) => t.id),
      [tenancy.B.tenantId],
    );
  });
});
