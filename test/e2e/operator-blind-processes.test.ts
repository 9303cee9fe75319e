/**
 * Operator-blind split (issue 5) with two real processes, as an operator and a provider would
 * run them: `galet start --roles network` and `galet start --roles join,application` linked by a
 * link token. A simulated gateway and device talk to the operator's UDP port. Checks that the
 * provider reads the payloads, the operator does not, that uplinks sent while the provider is
 * down arrive in order once it is back, and that no file or log line of the operator holds the
 * AppKey, the AppSKey or a plaintext payload.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { ENGINE_NAMES, roleDatabases } from '../helpers/engine-places.js';
import { APP_KEY, JOIN_EUI, waitFor } from '../scenarios/helpers.js';
import {
  assertHoldsNone,
  filesUnder,
  type GaletProcess,
  PROVIDER_TOKEN,
  postgresDump,
  request,
  startGaletProcess,
  startOperator,
  startProviderProcess,
  stop,
} from './operator-blind-helpers.js';

const GW = 'aa555a0000000e01';

for (const engine of ENGINE_NAMES) {
  describe(`operator-blind split across two processes on ${engine}`, () => {
    it('serves a provider linked from another process: joins, uplinks, outage, nothing readable on the operator side', {
      timeout: 120_000,
    }, async (t) => {
      // On PostgreSQL each role has a database of its own, as two organisations would.
      const databases = await roleDatabases(t, engine, ['operator', 'provider']);
      if (databases === undefined) return;
      const operatorSide = await startOperator(GW, databases.operator);
      const { opDir, provDir, operator, net } = operatorSide;
      let provider: GaletProcess | undefined;
      try {
        const applicationId = net.applicationId;
        // The linked application appears on the provider's side with the same id.
        const started = await startProviderProcess(operatorSide, databases.provider);
        provider = started.provider;
        const onProvider = (method: string, path: string, body?: unknown) =>
          request(provider!.httpPort, PROVIDER_TOKEN, method, path, body);

        const devEui = '00000000000e0001';
        const created = await onProvider('POST', '/api/v1/devices', {
          devEui,
          joinEui: JOIN_EUI,
          name: 'town hall water meter',
          applicationId,
          macVersion: '1.0.4',
          appKey: Buffer.from(APP_KEY).toString('hex'),
        });
        assert.equal(created.status, 201, JSON.stringify(created.json));
        const seen = await net.galet.request('GET', `/api/v1/devices/${devEui}`);
        assert.equal(seen.json.operatorCanDecrypt, false);

        const device = await net.addOtaaDevice(devEui, '1.0.4', { register: false });
        await net.join(device);
        const payloads = [1, 2, 3, 4].map((n) => Buffer.from(`volume=${n}042 m3 #${n}`));
        const upOnProvider = async (count: number) =>
          waitFor(
            `${count} up events on the provider`,
            async () => {
              const events = (await onProvider('GET', `/api/v1/devices/${devEui}/events?limit=100`))
                .json.events as { event: string; fCnt: number; data?: string }[];
              const ups = events.filter((e) => e.event === 'up').reverse();
              return ups.length >= count ? ups : undefined;
            },
            15_000,
          );

        const first = await net.uplink(device, { fPort: 3, payload: payloads[0]! });
        assert.equal(first.event.data, undefined);
        assert.equal(typeof first.event.frmPayload, 'string');
        assert.deepEqual(
          (await upOnProvider(1)).map((e) => Buffer.from(e.data!, 'base64').toString()),
          [payloads[0]!.toString()],
        );

        // The provider's server goes down: the network stores and keeps the uplinks for it.
        await stop(provider);
        for (const payload of payloads.slice(1)) {
          const { event } = await net.uplink(device, { fPort: 3, payload });
          assert.equal(event.data, undefined);
        }
        provider = await startGaletProcess(started.args, PROVIDER_TOKEN);
        const ups = await upOnProvider(4);
        assert.deepEqual(
          ups.map((e) => [e.fCnt, Buffer.from(e.data!, 'base64').toString()]),
          payloads.map((payload, index) => [index, payload.toString()]),
          'every uplink once, in order, decrypted',
        );

        // Nothing the operator keeps or logs holds the AppKey, the AppSKey or a payload.
        await stop(operator);
        const secrets = [
          ['AppKey', Buffer.from(APP_KEY)],
          ['AppSKey', Buffer.from(device.sessionKeys()!.appSKey)],
          ...payloads.map((payload, n) => [`payload ${n + 1}`, payload] as const),
        ] as const;
        for (const [path, content] of await filesUnder(opDir))
          assertHoldsNone(path, content, secrets);
        assertHoldsNone('the operator log', Buffer.from(operator.output.join('')), secrets);
        if (databases.operator !== undefined) {
          const dump = await postgresDump(databases.operator);
          // The scan reads real rows: the device and its encrypted uplinks are there.
          assert.ok(dump.includes(devEui) && dump.includes('frmPayload'));
          assertHoldsNone('the operator database', dump, secrets);
        }
      } finally {
        await net.close();
        if (provider !== undefined) await stop(provider);
        await stop(operator);
        await rm(opDir, { recursive: true, force: true });
        await rm(provDir, { recursive: true, force: true });
      }
    });
  });
}
