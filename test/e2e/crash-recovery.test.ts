/**
 * `galet start` killed with SIGKILL right after accepting uplinks (their counters still waiting
 * in memory to be written behind), then started again on the same data directory: the counters
 * come back from the stored events, so an old frame replayed afterwards is refused and the
 * device's next frame is accepted.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { removeDir } from '../helpers/galet.js';
import {
  type GaletProcess,
  startGaletProcess,
  stopGaletProcess,
} from '../helpers/galet-process.js';
import { ScenarioNetwork } from '../scenarios/helpers.js';

const TOKEN = 'crash-admin-token-0123456789';
const GW = 'aa555a0000000c01';

describe('crash recovery of a real process', () => {
  it('keeps refusing replayed frames after kill -9 (counters recovered from the events)', {
    timeout: 90_000,
  }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-crash-'));
    const args = [
      '--data-dir',
      dataDir,
      '--host',
      '127.0.0.1',
      '--http-port',
      '0',
      '--udp-port',
      '0',
      '--dedup-window-ms',
      '50',
      // Nothing is written behind before the kill, however slow the machine.
      '--write-behind-ms',
      '600000',
    ];
    let galet: GaletProcess | undefined = await startGaletProcess(args, TOKEN);
    const attach = (running: GaletProcess, existing?: { applicationId: string }) =>
      ScenarioNetwork.attach(
        {
          baseUrl: `http://127.0.0.1:${running.httpPort}`,
          udpPort: running.udpPort as number,
          adminToken: TOKEN,
          dataDir,
        },
        [{ gatewayId: GW }],
        existing,
      );
    let net = await attach(galet);
    try {
      const device = await net.addAbpDevice('00000000000c0001', '1.0.4', 0x260c0001);
      const sent = [];
      for (let n = 0; n < 4; n++) {
        const payload = Buffer.from([n]);
        sent.push((await net.uplink(device, { fPort: 2, payload })).transmission);
      }
      const before = await net.galet.request('GET', `/api/v1/devices/${device.devEui}`);
      assert.equal(before.json.fCntUp, 3);

      // A crash within the write-behind interval: nothing flushed the counters.
      await stopGaletProcess(galet, 'SIGKILL');
      await net.close();
      galet = await startGaletProcess(args, TOKEN);
      assert.match(galet.output.join(''), /uplink counters recovered/);
      net = await attach(galet, { applicationId: net.applicationId });
      const after = await net.galet.request('GET', `/api/v1/devices/${device.devEui}`);
      assert.equal(after.json.fCntUp, 3, 'the counter came back');

      net.transmit(device, sent[1]!);
      await net.waitForMetric('galet_network_uplinks_replayed_total', 1);
      await net.uplink(device, { fPort: 2, payload: Buffer.from([4]) });
      const ups = await net.events(device.devEui, 'up');
      assert.deepEqual(
        ups.map((e) => e.fCnt),
        [0, 1, 2, 3, 4],
        'the replay stored nothing; the next frame went in',
      );
    } finally {
      await net.close();
      if (galet !== undefined) await stopGaletProcess(galet);
      await removeDir(dataDir);
    }
  });
});
