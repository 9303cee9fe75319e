import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { type PlatformApi, startPlatformApi } from './platform-helpers.js';
import { eui, newDeviceBody, quietNetwork } from './tenancy-helpers.js';

/**
 * Sharing measurements (issue 6): a water provider shares the daily volume of the town hall's
 * meter with the commune, read-only. The commune sees the shared fields of the shared device
 * only; other tenants and the operator see nothing; deletion revokes access at once.
 */
describe('measurement shares: a provider shares chosen fields of a device with a commune', () => {
  let api: PlatformApi;
  let provider: string;
  let commune: string;
  let otherCommune: string;
  let application: string;
  let otherApplication: string;
  let meter: string;
  let valve: string;
  /** Tokens of API keys: provider roles, commune roles, the other commune. */
  const tokens: Record<string, string> = {};
  const FROM = '2026-02-01T00:00:00Z';
  const TO = '2026-02-03T00:00:00Z';

  async function admin(method: string, url: string, body?: unknown) {
    const answer = await api.request(method, url, { body });
    assert.ok(answer.status < 300, `${method} ${url}: ${JSON.stringify(answer.json)}`);
    return answer.json;
  }

  async function key(name: string, body: Record<string, unknown>): Promise<string> {
    return (await admin('POST', '/api/v1/api-keys', { name, ...body })).token;
  }

  /** `POST .../measurement-shares` as the provider's owner unless a token is given. */
  function share(body: Record<string, unknown>, token = tokens['providerOwner']) {
    return api.request('POST', `/api/v1/applications/${application}/measurement-shares`, {
      token: token ?? null,
      body,
    });
  }

  before(async () => {
    api = await startPlatformApi({ network: quietNetwork(), rateLimit: false });
    provider = (await admin('POST', '/api/v1/tenants', { name: 'Eaux du Forez', kind: 'provider' }))
      .id;
    commune = (await admin('POST', '/api/v1/tenants', { name: 'Veauche' })).id;
    otherCommune = (await admin('POST', '/api/v1/tenants', { name: 'Feurs' })).id;
    application = (
      await admin('POST', '/api/v1/applications', { name: 'meters', tenantId: provider })
    ).id;
    otherApplication = (
      await admin('POST', '/api/v1/applications', { name: 'valves', tenantId: provider })
    ).id;
    meter = eui();
    await admin('POST', '/api/v1/devices', newDeviceBody(application, 'town hall meter', meter));
    valve = eui();
    await admin('POST', '/api/v1/devices', newDeviceBody(otherApplication, 'valve', valve));
    for (const role of ['owner', 'admin', 'viewer'] as const) {
      tokens[`provider${role[0]?.toUpperCase()}${role.slice(1)}`] = await key(role, {
        tenantId: provider,
        role,
      });
    }
    tokens['providerReadOnly'] = await key('ro', {
      tenantId: provider,
      role: 'owner',
      readOnly: true,
    });
    tokens['providerIntegration'] = await key('int', {
      applicationId: application,
      role: 'integration',
    });
    tokens['communeOwner'] = await key('c owner', { tenantId: commune, role: 'owner' });
    tokens['communeViewer'] = await key('c viewer', { tenantId: commune, role: 'viewer' });
    tokens['communeReadOnly'] = await key('c ro', {
      tenantId: commune,
      role: 'admin',
      readOnly: true,
    });
    tokens['otherViewer'] = await key('f viewer', { tenantId: otherCommune, role: 'viewer' });
    tokens['operatorAdmin'] = await key('noc', { role: 'operator-admin' });
    // Two days of hourly readings: volume, index and a temperature that is not shared.
    let eventId = 0;
    for (let hour = 0; hour < 48; hour += 1) {
      eventId += 1;
      await api.storage.measurements.recordDecoded({
        eventId,
        devEui: meter,
        applicationId: application,
        time: new Date(Date.parse(FROM) + hour * 3_600_000).toISOString(),
        object: { volume: 2, index: 1000 + 2 * hour, temperature: 11.5, label: '=cmd' },
      });
    }
  });

  after(async () => {
    await api.close();
  });

  it('lets the provider’s owner share, and refuses the wrong caller, device or tenant', async () => {
    const meterVolume = { devEui: meter, tenantId: commune, fields: ['volume'] };
    const refusals: [string, Record<string, unknown>, string | undefined, number, string][] = [
      ['viewer', meterVolume, tokens['providerViewer'], 403, 'FORBIDDEN'],
      ['read-only owner', meterVolume, tokens['providerReadOnly'], 403, 'FORBIDDEN'],
      ['integration', meterVolume, tokens['providerIntegration'], 403, 'FORBIDDEN'],
      ['another tenant', meterVolume, tokens['communeOwner'], 404, 'NOT_FOUND'],
      ['the operator', meterVolume, tokens['operatorAdmin'], 403, 'FORBIDDEN'],
      [
        'a device of another application',
        { devEui: valve, tenantId: commune, fields: ['open'] },
        undefined,
        404,
        'NOT_FOUND',
      ],
      [
        'a device that does not exist',
        { devEui: eui(), tenantId: commune, fields: ['open'] },
        undefined,
        404,
        'NOT_FOUND',
      ],
      [
        'an unknown tenant',
        { devEui: meter, tenantId: 'no-such-tenant', fields: ['volume'] },
        undefined,
        400,
        'UNKNOWN_REFERENCE',
      ],
      [
        'its own tenant',
        { devEui: meter, tenantId: provider, fields: ['volume'] },
        undefined,
        400,
        'BAD_REQUEST',
      ],
      ['no field', { devEui: meter, tenantId: commune, fields: [] }, undefined, 400, 'BAD_REQUEST'],
      [
        'a field too long',
        { devEui: meter, tenantId: commune, fields: ['x'.repeat(201)] },
        undefined,
        400,
        'BAD_REQUEST',
      ],
    ];
    for (const [what, body, token, status, error] of refusals) {
      const answer = await share(body, token);
      assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.json)}`);
      assert.equal(answer.json.error, error, what);
    }
    const created = await share({
      devEui: meter.toUpperCase(),
      tenantId: commune,
      fields: ['volume'],
      note: 'daily volume, town hall',
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(created.json.devEui, meter);
    assert.equal(created.json.tenantName, 'Veauche');
    assert.equal(created.json.applicationId, application);
    assert.deepEqual(created.json.fields, ['volume']);
    assert.equal(created.json.active, true);
    assert.match(created.json.createdBy, /^api-key:/);
    const again = await share({ devEui: meter, tenantId: commune, fields: ['index'] });
    assert.equal(again.status, 409);
    // The provider's viewer reads the shares; the admin deletes them (below).
    const list = await api.request(
      'GET',
      `/api/v1/applications/${application}/measurement-shares`,
      { token: tokens['providerViewer'] },
    );
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.measurementShares, [created.json]);
    assert.equal(list.json.nextCursor, null);
    const one = await api.request(
      'GET',
      `/api/v1/applications/${application}/measurement-shares/${created.json.id}`,
      { token: tokens['providerViewer'] },
    );
    assert.deepEqual(one.json, created.json);
    const viaOtherApplication = await api.request(
      'GET',
      `/api/v1/applications/${otherApplication}/measurement-shares/${created.json.id}`,
    );
    assert.equal(viaOtherApplication.status, 404, 'a share is reached through its application');
    await deleteShare(created.json.id);
  });

  async function deleteShare(id: string) {
    const deleted = await api.request(
      'DELETE',
      `/api/v1/applications/${application}/measurement-shares/${id}`,
      { token: tokens['providerAdmin'] },
    );
    assert.equal(deleted.status, 204, JSON.stringify(deleted.json));
  }

  it('shows the commune only the shared fields of the shared device', async () => {
    const created = (await share({ devEui: meter, tenantId: commune, fields: ['volume'] })).json;
    for (const reader of ['communeOwner', 'communeViewer', 'communeReadOnly']) {
      const token = tokens[reader];
      const list = await api.request('GET', '/api/v1/shared-measurements', { token });
      assert.equal(list.status, 200, reader);
      assert.deepEqual(list.json.sharedMeasurements, [
        {
          id: created.id,
          tenantId: commune,
          devEui: meter,
          deviceName: 'town hall meter',
          fields: ['volume'],
          providerName: 'Eaux du Forez',
          createdAt: created.createdAt,
        },
      ]);
      const one = await api.request('GET', `/api/v1/shared-measurements/${created.id}`, { token });
      assert.deepEqual(one.json, list.json.sharedMeasurements[0]);
      const raw = await api.request(
        'GET',
        `/api/v1/shared-measurements/${created.id}/measurements?from=${FROM}&to=${TO}`,
        { token },
      );
      assert.equal(raw.status, 200, JSON.stringify(raw.json));
      assert.equal(raw.json.shareId, created.id);
      assert.equal(raw.json.points.length, 48);
      assert.deepEqual(
        new Set(raw.json.points.map((p: { field: string }) => p.field)),
        new Set(['volume']),
      );
    }
    const token = tokens['communeViewer'];
    const base = `/api/v1/shared-measurements/${created.id}/measurements?from=${FROM}&to=${TO}`;
    const daily = await api.request('GET', `${base}&interval=1d&aggregate=sum`, { token });
    assert.deepEqual(daily.json.buckets, [
      { time: '2026-02-01T00:00:00.000Z', field: 'volume', value: 48, count: 24 },
      { time: '2026-02-02T00:00:00.000Z', field: 'volume', value: 48, count: 24 },
    ]);
    const asked = await api.request('GET', `${base}&field=volume&limit=2`, { token });
    assert.equal(asked.json.points.length, 2);
    assert.equal(asked.json.truncated, true);
    for (const field of ['temperature', 'index', 'label', 'volume.x']) {
      const refused = await api.request('GET', `${base}&field=${field}`, { token });
      assert.equal(refused.status, 404, field);
      assert.equal(refused.json.error, 'NOT_FOUND');
    }
    // Read-only: no write route under /shared-measurements.
    for (const method of ['POST', 'PATCH', 'DELETE', 'PUT']) {
      const write = await api.request(method, `/api/v1/shared-measurements/${created.id}`, {
        token: tokens['communeOwner'],
        body: {},
      });
      assert.equal(write.status, 404, method);
    }
    await deleteShare(created.id);
  });

  it('merges several shared fields in time order, up to the limit', async () => {
    const created = (await share({ devEui: meter, tenantId: commune, fields: ['index', 'volume'] }))
      .json;
    const base = `/api/v1/shared-measurements/${created.id}/measurements?from=${FROM}&to=${TO}`;
    const token = tokens['communeViewer'];
    const all = await api.request('GET', base, { token });
    assert.equal(all.json.points.length, 96);
    assert.equal(all.json.truncated, false);
    const three = await api.request('GET', `${base}&limit=3`, { token });
    assert.deepEqual(
      three.json.points.map((p: { time: string; field: string }) => `${p.time} ${p.field}`),
      [
        '2026-02-01T00:00:00.000Z index',
        '2026-02-01T00:00:00.000Z volume',
        '2026-02-01T01:00:00.000Z index',
      ],
    );
    assert.equal(three.json.truncated, true);
    // The same rows as the provider's own read of those fields.
    const own = await api.request(
      'GET',
      `/api/v1/devices/${meter}/measurements?from=${FROM}&to=${TO}&limit=10000`,
      { token: tokens['providerViewer'] },
    );
    const shared = own.json.points.filter((p: { field: string }) =>
      ['index', 'volume'].includes(p.field),
    );
    assert.deepEqual(all.json.points, shared);
    const hourlyMax = await api.request('GET', `${base}&interval=1h&aggregate=max&limit=4`, {
      token,
    });
    assert.deepEqual(
      hourlyMax.json.buckets.map((b: { field: string; value: number }) => `${b.field}=${b.value}`),
      ['index=1000', 'volume=2', 'index=1002', 'volume=2'],
    );
    await deleteShare(created.id);
  });

  it('shows nothing to other tenants, integrations or the operator (404, or 403 on the list)', async () => {
    const created = (await share({ devEui: meter, tenantId: commune, fields: ['volume'] })).json;
    const urls = [
      `/api/v1/shared-measurements/${created.id}`,
      `/api/v1/shared-measurements/${created.id}/measurements?from=${FROM}&to=${TO}`,
    ];
    for (const reader of [
      'otherViewer',
      'providerOwner',
      'providerIntegration',
      'operatorAdmin',
      'admin',
    ]) {
      const token = reader === 'admin' ? undefined : tokens[reader];
      for (const url of urls) {
        const answer = await api.request('GET', url, token === undefined ? {} : { token });
        assert.equal(answer.status, 404, `${reader} ${url}`);
        assert.ok(!JSON.stringify(answer.json).includes(meter), `${reader} ${url}`);
      }
      const list = await api.request(
        'GET',
        '/api/v1/shared-measurements',
        token === undefined ? {} : { token },
      );
      if (['otherViewer', 'providerOwner'].includes(reader)) {
        assert.equal(list.status, 200, reader);
        assert.deepEqual(list.json.sharedMeasurements, [], reader);
      } else {
        assert.equal(list.status, 403, reader);
      }
    }
    const filtered = await api.request('GET', `/api/v1/shared-measurements?tenantId=${commune}`, {
      token: tokens['otherViewer'],
    });
    assert.equal(filtered.status, 404, 'another tenant as the filter');
    await deleteShare(created.id);
  });

  it('revokes access at once when the share is deleted, the device moves or goes', async () => {
    const created = (await share({ devEui: meter, tenantId: commune, fields: ['volume'] })).json;
    const url = `/api/v1/shared-measurements/${created.id}/measurements?from=${FROM}&to=${TO}`;
    const token = tokens['communeViewer'];
    assert.equal((await api.request('GET', url, { token })).status, 200);
    await deleteShare(created.id);
    assert.equal((await api.request('GET', url, { token })).status, 404);
    const list = await api.request('GET', '/api/v1/shared-measurements', { token });
    assert.deepEqual(list.json.sharedMeasurements, []);

    // A device moved to another application: its share is inert (the provider sees it so).
    const moving = eui();
    await admin('POST', '/api/v1/devices', newDeviceBody(application, 'moving meter', moving));
    const inert = (await share({ devEui: moving, tenantId: commune, fields: ['volume'] })).json;
    const inertUrl = `/api/v1/shared-measurements/${inert.id}`;
    assert.equal((await api.request('GET', inertUrl, { token })).status, 200);
    await admin('POST', `/api/v1/devices/${moving}/move`, { applicationId: otherApplication });
    assert.equal((await api.request('GET', inertUrl, { token })).status, 404);
    const seen = await api.request(
      'GET',
      `/api/v1/applications/${application}/measurement-shares/${inert.id}`,
    );
    assert.equal(seen.json.active, false);
    // A device deleted takes its shares along.
    await admin('DELETE', `/api/v1/devices/${moving}`);
    assert.equal(
      (
        await api.request(
          'GET',
          `/api/v1/applications/${application}/measurement-shares/${inert.id}`,
        )
      ).status,
      404,
    );
  });

  it('exports a share as CSV, shared fields only', async () => {
    const created = (await share({ devEui: meter, tenantId: commune, fields: ['volume', 'label'] }))
      .json;
    const url = `/api/v1/shared-measurements/${created.id}/measurements?from=${FROM}&to=2026-02-01T02:00:00Z`;
    for (const variant of [
      { url: `${url}&format=csv`, headers: {} },
      { url, headers: { accept: 'text/csv' } },
    ]) {
      const answer = await api.app.inject({
        method: 'GET',
        url: variant.url,
        headers: { authorization: `Bearer ${tokens['communeViewer']}`, ...variant.headers },
      });
      assert.equal(answer.statusCode, 200);
      assert.match(String(answer.headers['content-type']), /^text\/csv/);
      assert.match(
        String(answer.headers['content-disposition']),
        new RegExp(`${meter}-measurements\\.csv`),
      );
      assert.deepEqual(answer.body.trim().split(/\r?\n/), [
        'time,field,value',
        "2026-02-01T00:00:00.000Z,label,'=cmd",
        '2026-02-01T00:00:00.000Z,volume,2',
        "2026-02-01T01:00:00.000Z,label,'=cmd",
        '2026-02-01T01:00:00.000Z,volume,2',
      ]);
    }
    const daily = await api.app.inject({
      method: 'GET',
      url: `/api/v1/shared-measurements/${created.id}/measurements?from=${FROM}&to=${TO}&interval=1d&aggregate=count&format=csv&field=volume`,
      headers: { authorization: `Bearer ${tokens['communeViewer']}` },
    });
    assert.deepEqual(daily.body.trim().split(/\r?\n/), [
      'time,field,count,count',
      '2026-02-01T00:00:00.000Z,volume,24,24',
      '2026-02-02T00:00:00.000Z,volume,24,24',
    ]);
    await deleteShare(created.id);
  });

  it('lets the operator share its own applications (without tenant), not on a network-only Galet', async () => {
    const noc = (await admin('POST', '/api/v1/applications', { name: 'noc' })).id;
    const probe = eui();
    await admin('POST', '/api/v1/devices', newDeviceBody(noc, 'river level', probe));
    const created = await api.request('POST', `/api/v1/applications/${noc}/measurement-shares`, {
      body: { devEui: probe, tenantId: commune, fields: ['level'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.match(created.json.createdBy, /^admin-token/);
    const received = await api.request('GET', `/api/v1/shared-measurements?devEui=${probe}`, {
      token: tokens['communeViewer'],
    });
    assert.equal(received.json.sharedMeasurements.length, 1);
    assert.equal(received.json.sharedMeasurements[0].providerName, null);

    const blind = await startPlatformApi({
      network: quietNetwork(),
      rateLimit: false,
      roles: { operatorBlind: true },
    });
    try {
      const tenant = (await blind.request('POST', '/api/v1/tenants', { body: { name: 'P' } })).json
        .id;
      const receiver = (await blind.request('POST', '/api/v1/tenants', { body: { name: 'C' } }))
        .json.id;
      const app = (
        await blind.request('POST', '/api/v1/applications', {
          body: { name: 'm', tenantId: tenant },
        })
      ).json.id;
      const devEui = eui();
      await blind.storage.devices.create({
        devEui,
        joinEui: eui(),
        name: 'm',
        applicationId: app,
        macVersion: '1.0.4',
        deviceClass: 'A',
        activation: 'otaa',
        rootKeysElsewhere: true,
      });
      const owner = (
        await blind.request('POST', '/api/v1/api-keys', {
          body: { name: 'o', tenantId: tenant, role: 'owner' },
        })
      ).json.token;
      const refused = await blind.request(
        'POST',
        `/api/v1/applications/${app}/measurement-shares`,
        {
          token: owner,
          body: { devEui, tenantId: receiver, fields: ['volume'] },
        },
      );
      assert.equal(refused.status, 400);
      assert.match(refused.json.message, /network role alone/);
    } finally {
      await blind.close();
    }
  });

  it('changes a share’s fields and note: the commune reads the new fields at once', async () => {
    const created = (
      await share({ devEui: meter, tenantId: commune, fields: ['volume'], note: 'town hall' })
    ).json;
    const url = `/api/v1/applications/${application}/measurement-shares/${created.id}`;
    const patch = (body: unknown, token = tokens['providerAdmin']) =>
      api.request('PATCH', url, { token: token ?? null, body });
    const read = (field: string) =>
      api.request(
        'GET',
        `/api/v1/shared-measurements/${created.id}/measurements?from=${FROM}&to=${TO}&field=${field}`,
        { token: tokens['communeViewer'] },
      );
    assert.equal((await read('index')).status, 404, 'not shared yet');

    const widened = await patch({ fields: ['volume', 'index', 'volume'] });
    assert.equal(widened.status, 200, JSON.stringify(widened.json));
    assert.deepEqual(widened.json, { ...created, fields: ['volume', 'index'] });
    assert.equal((await read('index')).status, 200);
    const received = await api.request('GET', `/api/v1/shared-measurements/${created.id}`, {
      token: tokens['communeViewer'],
    });
    assert.deepEqual(received.json.fields, ['volume', 'index']);

    const narrowed = await patch({ fields: ['index'], note: null });
    assert.equal(narrowed.status, 200);
    assert.equal(narrowed.json.note, null);
    assert.equal((await read('volume')).status, 404, 'taken back at once');
    assert.equal((await patch({ note: 'index only' })).json.note, 'index only');

    const refusals: [string, unknown, string | undefined, number][] = [
      ['nothing to change', {}, undefined, 400],
      ['no field', { fields: [] }, undefined, 400],
      ['a field too long', { fields: ['x'.repeat(201)] }, undefined, 400],
      ['an empty note', { note: '' }, undefined, 400],
      ['another device', { devEui: valve }, undefined, 400],
      ['another receiving tenant', { tenantId: otherCommune }, undefined, 400],
      ['a viewer', { fields: ['volume'] }, tokens['providerViewer'], 403],
      ['a read-only owner', { fields: ['volume'] }, tokens['providerReadOnly'], 403],
      ['an integration', { fields: ['volume'] }, tokens['providerIntegration'], 403],
      ['the operator', { fields: ['volume'] }, tokens['operatorAdmin'], 403],
      ['the receiving tenant', { fields: ['volume'] }, tokens['communeOwner'], 404],
      ['another tenant', { fields: ['volume'] }, tokens['otherViewer'], 404],
    ];
    for (const [what, body, token, status] of refusals) {
      const answer = await patch(body, token);
      assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.json)}`);
      assert.equal(typeof answer.json.message, 'string', what);
    }
    const viaOtherApplication = await api.request(
      'PATCH',
      `/api/v1/applications/${otherApplication}/measurement-shares/${created.id}`,
      { body: { fields: ['volume'] } },
    );
    assert.equal(viaOtherApplication.status, 404, 'a share is reached through its application');
    const unchanged = await api.request('GET', url);
    assert.deepEqual(unchanged.json.fields, ['index']);
    assert.equal(unchanged.json.note, 'index only');
    assert.equal(unchanged.json.devEui, meter);
    assert.equal(unchanged.json.tenantId, commune);

    const updates = (
      await api.request(
        'GET',
        `/api/v1/audit?tenantId=${provider}&action=measurement-share.update&limit=1000`,
      )
    ).json.entries.filter((entry: { objectId: string }) => entry.objectId === created.id);
    assert.deepEqual(
      updates.map((entry: { outcome: string }) => entry.outcome),
      ['failure', 'denied', 'denied', 'denied', 'denied', 'success', 'success', 'success'],
      'newest first: the changes, the refusals of the provider’s keys, the wrong application',
    );
    const first = updates.at(-1);
    assert.equal(first.tenantId, provider);
    assert.equal(first.actor.type, 'api-key');
    assert.deepEqual(first.details.changed, ['fields']);
    assert.deepEqual(first.details.fields, ['volume', 'index']);
    assert.deepEqual(first.details.previousFields, ['volume']);
    assert.equal(first.details.receivingTenantId, commune);
    assert.deepEqual(updates[6].details.changed, ['fields', 'note']);
    assert.deepEqual(updates[6].details.previousFields, ['volume', 'index']);
    assert.deepEqual(updates[5].details.changed, ['note']);
    assert.equal(updates[5].details.fields, undefined, 'the note only');
    await deleteShare(created.id);
  });

  it('audits every read of shared measurements for the provider and the commune, not own reads', async () => {
    const created = (await share({ devEui: meter, tenantId: commune, fields: ['volume', 'index'] }))
      .json;
    const base = `/api/v1/shared-measurements/${created.id}/measurements`;
    const reads = async (token: string | undefined, tenantId?: string) =>
      (
        await api.request(
          'GET',
          `/api/v1/audit?action=shared-measurements.read&limit=1000${tenantId === undefined ? '' : `&tenantId=${tenantId}`}`,
          // No token: the admin token's (the operator's) view.
          token === undefined ? {} : { token },
        )
      ).json.entries.filter((entry: { objectId: string }) => entry.objectId === created.id);
    const viewerKey = (
      await api.request('GET', '/api/v1/auth/me', { token: tokens['communeViewer'] })
    ).json.apiKey.id;

    const daily = await api.request(
      'GET',
      `${base}?from=${FROM}&to=${TO}&interval=1d&aggregate=sum&field=volume`,
      { token: tokens['communeViewer'] },
    );
    assert.equal(daily.status, 200);
    const csv = await api.app.inject({
      method: 'GET',
      url: `${base}?to=${TO}&format=csv`,
      headers: { authorization: `Bearer ${tokens['communeReadOnly']}` },
    });
    assert.equal(csv.statusCode, 200);
    const notShared = await api.request('GET', `${base}?from=${FROM}&field=temperature`, {
      token: tokens['communeViewer'],
    });
    assert.equal(notShared.status, 404);
    const badQuery = await api.request('GET', `${base}?aggregate=sum`, {
      token: tokens['communeViewer'],
    });
    assert.equal(badQuery.status, 400);
    // Not audited: the provider reading its own device, others probing the share (404).
    await api.request('GET', `/api/v1/devices/${meter}/measurements?from=${FROM}&to=${TO}`, {
      token: tokens['providerViewer'],
    });
    assert.equal((await api.request('GET', base, { token: tokens['otherViewer'] })).status, 404);

    const seenByProvider = await reads(tokens['providerOwner']);
    assert.deepEqual(
      seenByProvider.map((entry: { outcome: string }) => entry.outcome),
      ['failure', 'denied', 'success', 'success'],
    );
    const [failed, denied, csvRead, dailyRead] = seenByProvider;
    assert.deepEqual(dailyRead.actor, { type: 'api-key', id: viewerKey, tenantId: commune });
    assert.equal(dailyRead.tenantId, provider);
    assert.equal(dailyRead.relatedTenantId, commune);
    assert.equal(dailyRead.objectType, 'measurement-share');
    assert.deepEqual(dailyRead.details, {
      devEui: meter,
      fields: ['volume'],
      from: FROM,
      to: TO,
      interval: '1d',
      aggregate: 'sum',
      rows: 2,
    });
    // The range actually read: the default start filled in.
    assert.deepEqual(csvRead.details, {
      devEui: meter,
      fields: ['volume', 'index'],
      from: '2026-02-02T00:00:00.000Z',
      to: TO,
      format: 'csv',
      rows: 48,
    });
    assert.equal(csvRead.details.to, TO);
    assert.equal(denied.details.error, 'NOT_FOUND');
    assert.deepEqual(denied.details.fields, ['temperature']);
    assert.equal(failed.details.error, 'BAD_REQUEST');
    for (const entry of seenByProvider) {
      assert.ok(!JSON.stringify(entry).includes(application), 'nothing of the application');
    }

    // The commune's owner sees the same entries, without the provider's tenant id.
    const seenByCommune = await reads(tokens['communeOwner']);
    assert.deepEqual(
      seenByCommune.map((entry: { id: number }) => entry.id),
      seenByProvider.map((entry: { id: number }) => entry.id),
    );
    for (const entry of seenByCommune) {
      assert.equal(entry.tenantId, null);
      assert.equal(entry.relatedTenantId, commune);
      assert.ok(!JSON.stringify(entry).includes(provider));
    }
    assert.equal((await reads(tokens['communeOwner'], commune)).length, 4, 'by the tenant filter');
    assert.equal((await reads(tokens['providerOwner'], provider)).length, 4);
    assert.equal((await reads(undefined)).length, 4, 'the operator sees them once');
    // Another tenant's admin sees none of it.
    const otherAdmin = await key('f admin', { tenantId: otherCommune, role: 'admin' });
    assert.equal((await reads(otherAdmin)).length, 0);
    await deleteShare(created.id);
  });

  it('answers a shared read only once its audit entry is written', async () => {
    const created = (await share({ devEui: meter, tenantId: commune, fields: ['volume'] })).json;
    const url = `/api/v1/shared-measurements/${created.id}/measurements?from=${FROM}&to=${TO}`;
    const token = tokens['communeViewer'];
    // The audit log cannot be written (its table is away): the read is refused, no value leaves.
    await sql`ALTER TABLE audit_log RENAME TO audit_log_away`.execute(api.database.db);
    try {
      const refused = await api.app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(refused.statusCode, 500);
      assert.ok(!refused.body.includes('points'), refused.body);
      const csv = await api.app.inject({
        method: 'GET',
        url: `${url}&format=csv`,
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(csv.statusCode, 500);
      assert.ok(!csv.body.includes('volume'), csv.body);
    } finally {
      await sql`ALTER TABLE audit_log_away RENAME TO audit_log`.execute(api.database.db);
    }
    assert.equal((await api.request('GET', url, { token })).status, 200);
    await deleteShare(created.id);
  });

  it('audits each write with actor, tenant, share and outcome', async () => {
    const entries = async () =>
      (await api.request('GET', `/api/v1/audit?tenantId=${provider}&limit=1000`)).json.entries as {
        action: string;
        outcome: string;
        objectId: string | null;
        tenantId: string | null;
        actor: { type: string };
        details: Record<string, unknown>;
      }[];
    const created = (await share({ devEui: meter, tenantId: commune, fields: ['volume'] })).json;
    const denied = await api.request(
      'DELETE',
      `/api/v1/applications/${application}/measurement-shares/${created.id}`,
      { token: tokens['providerViewer'] },
    );
    assert.equal(denied.status, 403);
    await deleteShare(created.id);
    const about = (await entries()).filter((entry) => entry.objectId === created.id);
    assert.deepEqual(
      about.map((entry) => `${entry.action} ${entry.outcome}`),
      [
        'measurement-share.delete success',
        'measurement-share.delete denied',
        'measurement-share.create success',
      ],
    );
    for (const entry of about) {
      assert.equal(entry.tenantId, provider);
      assert.equal(entry.actor.type, 'api-key');
      assert.equal(entry.details['receivingTenantId'] ?? commune, commune);
    }
    assert.deepEqual(about[2]?.details['fields'], ['volume']);
    assert.equal(about[0]?.details['devEui'], meter);
    const refused = (await entries()).find(
      (entry) => entry.action === 'measurement-share.create' && entry.outcome === 'denied',
    );
    assert.ok(refused, 'a refused share is audited too');
  });
});
