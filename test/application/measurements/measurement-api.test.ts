/**
 * The measurement API (`GET /devices/{devEui}/measurements`) and the applications' retention
 * and dropped fields, through the real API over SQLite with two tenants.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTenancy, type Tenancy } from '../../api/tenancy-helpers.js';

describe('measurement API', () => {
  let tenancy: Tenancy;
  let url: string;
  let eventId = 1000;

  before(async () => {
    tenancy = await startTenancy();
    const { A } = tenancy;
    url = `/api/v1/devices/${A.devEui}/measurements`;
    const start = Date.UTC(2026, 2, 1);
    // Every 30 minutes for a day: level = index, note = a text.
    for (let index = 0; index < 48; index += 1) {
      eventId += 1;
      await tenancy.api.storage.measurements.recordDecoded({
        eventId,
        devEui: A.devEui,
        applicationId: A.applicationId,
        time: new Date(start + index * 1_800_000).toISOString(),
        object: { level: index, note: index === 47 ? '=cmd|calc' : `n${index}` },
      });
    }
  });
  after(async () => {
    await tenancy.api.close();
  });

  const range = 'from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z';

  it('answers raw values of one field within [from, to)', async () => {
    const answer = await tenancy.api.request(
      'GET',
      `${url}?field=level&from=2026-03-01T01:00:00Z&to=2026-03-01T02:00:00Z`,
      { token: tenancy.tokens.viewer },
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(answer.json.devEui, tenancy.A.devEui);
    assert.equal(answer.json.truncated, false);
    assert.deepEqual(
      answer.json.points.map((point: { time: string; value: number }) => [point.time, point.value]),
      [
        ['2026-03-01T01:00:00.000Z', 2],
        ['2026-03-01T01:30:00.000Z', 3],
      ],
    );
  });

  it('aggregates per interval', async () => {
    const answer = await tenancy.api.request(
      'GET',
      `${url}?field=level&${range}&interval=6h&aggregate=max`,
      { token: tenancy.tokens.integration },
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.deepEqual(
      answer.json.buckets.map((bucket: { value: number; count: number }) => [
        bucket.value,
        bucket.count,
      ]),
      [
        [11, 12],
        [23, 12],
        [35, 12],
        [47, 12],
      ],
    );
    const average = await tenancy.api.request('GET', `${url}?field=level&${range}&interval=1d`);
    assert.equal(average.json.aggregate, 'avg');
    assert.deepEqual(average.json.buckets, [
      { time: '2026-03-01T00:00:00.000Z', field: 'level', value: 23.5, count: 48 },
    ]);
  });

  it('exports CSV with format=csv or Accept: text/csv, texts defused against formulas', async () => {
    const byQuery = await tenancy.api.app.inject({
      method: 'GET',
      url: `${url}?field=note&from=2026-03-01T23:00:00Z&to=2026-03-02T00:00:00Z&format=csv`,
      headers: { authorization: `Bearer ${tenancy.tokens.viewer}` },
    });
    assert.equal(byQuery.statusCode, 200);
    assert.match(String(byQuery.headers['content-type']), /^text\/csv/);
    assert.match(String(byQuery.headers['content-disposition']), /measurements\.csv/);
    assert.equal(
      byQuery.body,
      'time,field,value\r\n' +
        '2026-03-01T23:00:00.000Z,note,n46\r\n' +
        "2026-03-01T23:30:00.000Z,note,'=cmd|calc\r\n",
    );
    const byAccept = await tenancy.api.app.inject({
      method: 'GET',
      url: `${url}?field=level&${range}&interval=12h&aggregate=sum`,
      headers: { authorization: `Bearer ${tenancy.tokens.viewer}`, accept: 'text/csv' },
    });
    assert.equal(
      byAccept.body,
      'time,field,sum,count\r\n' +
        '2026-03-01T00:00:00.000Z,level,276,24\r\n' +
        '2026-03-01T12:00:00.000Z,level,852,24\r\n',
    );
  });

  it("answers 404 for another tenant's device, as for its events", async () => {
    const other = `/api/v1/devices/${tenancy.B.devEui}/measurements?${range}`;
    for (const token of [tenancy.tokens.owner, tenancy.tokens.integration]) {
      const answer = await tenancy.api.request('GET', other, { token });
      assert.equal(answer.status, 404);
      assert.equal(answer.json.error, 'NOT_FOUND');
    }
    const unknown = await tenancy.api.request(
      'GET',
      `/api/v1/devices/0000000000000001/measurements`,
    );
    assert.equal(unknown.status, 404);
  });

  it('refuses malformed queries with 400', async () => {
    for (const query of [
      'interval=5x',
      'aggregate=avg',
      'aggregate=median&interval=1h',
      'from=yesterday',
      'to=garbage',
      'to=2026-03-01',
      'from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z',
      'limit=0',
      'limit=10001',
      'interval=1s&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z',
      'interval=367d',
      'unknown=1',
    ]) {
      const answer = await tenancy.api.request('GET', `${url}?${query}`);
      assert.equal(answer.status, 400, `${query}: ${JSON.stringify(answer.json)}`);
      assert.equal(answer.json.error, 'BAD_REQUEST');
      assert.equal(typeof answer.json.message, 'string');
    }
  });

  it('sets retention and dropped fields on create and update', async () => {
    const created = await tenancy.admin('POST', '/api/v1/applications', {
      name: 'minimal',
      tenantId: tenancy.A.tenantId,
      retention: { eventsDays: 7 },
      dropFields: ['location'],
    });
    assert.deepEqual(created.retention, { eventsDays: 7, measurementsDays: null });
    assert.deepEqual(created.dropFields, ['location']);
    const updated = await tenancy.api.request('PATCH', `/api/v1/applications/${created.id}`, {
      token: tenancy.tokens.admin,
      body: { retention: { measurementsDays: 365, eventsDays: null }, dropFields: ['a', 'b.*'] },
    });
    assert.equal(updated.status, 200, JSON.stringify(updated.json));
    assert.deepEqual(updated.json.retention, { eventsDays: null, measurementsDays: 365 });
    assert.deepEqual(updated.json.dropFields, ['a', 'b.*']);
    const read = await tenancy.admin('GET', `/api/v1/applications/${created.id}`);
    assert.deepEqual(read.retention, updated.json.retention);
    for (const body of [
      { retention: { eventsDays: 0 } },
      { retention: { eventsDays: 1.5 } },
      { retention: { forever: true } },
      { dropFields: [''] },
      { dropFields: ['x'.repeat(201)] },
    ]) {
      const answer = await tenancy.api.request('PATCH', `/api/v1/applications/${created.id}`, {
        body,
      });
      assert.equal(answer.status, 400, JSON.stringify(body));
    }
    const viewer = await tenancy.api.request('PATCH', `/api/v1/applications/${created.id}`, {
      token: tenancy.tokens.viewer,
      body: { retention: { eventsDays: 1 } },
    });
    assert.equal(viewer.status, 403);
  });

  it('describes the route in the OpenAPI document', async () => {
    const answer = await tenancy.api.request('GET', '/api/v1/openapi.json', { token: null });
    const operation = answer.json.paths['/api/v1/devices/{devEui}/measurements']?.get;
    assert.ok(operation, 'measurements route documented');
    const names = operation.parameters.map((parameter: { name: string }) => parameter.name);
    for (const name of [
      'devEui',
      'field',
      'from',
      'to',
      'interval',
      'aggregate',
      'limit',
      'format',
    ]) {
      assert.ok(names.includes(name), name);
    }
    const patch = answer.json.paths['/api/v1/applications/{id}'].patch;
    const schema = patch.requestBody.content['application/json'].schema;
    assert.ok(schema.properties.retention && schema.properties.dropFields);
  });
});
