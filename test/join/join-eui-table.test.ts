import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveStartOptions } from '../../src/cli/start-command.js';
import {
  type JoinEuiSelector,
  JoinEuiTable,
  JoinEuiTableError,
} from '../../src/join/join-eui-table.js';
import {
  JoinServerDirectory,
  loadJoinServerRoutes,
  parseJoinServerSettings,
} from '../../src/join/join-server-directory.js';
import { silentLogger } from '../../src/logger.js';

function table(...selectors: JoinEuiSelector[]): JoinEuiTable<number> {
  return new JoinEuiTable(
    selectors.map((selector, index) => ({
      selector,
      value: index,
      where: `joinServers[${index}]`,
    })),
  );
}

function refused(selectors: JoinEuiSelector[], message: RegExp): void {
  assert.throws(
    () => table(...selectors),
    (error: unknown) => {
      assert.ok(error instanceof JoinEuiTableError);
      assert.match(error.message, message);
      return true;
    },
  );
}

describe('JoinEUI table', () => {
  it('matches a prefix on its leading bits, both ends included', () => {
    const t = table({ joinEuiPrefix: '70B3D57ED0000000/36' });
    assert.equal(t.lookup('70b3d57ed0000000'), 0);
    assert.equal(t.lookup('70b3d57edfffffff'), 0);
    assert.equal(t.lookup('70b3d57ee0000000'), undefined);
    assert.equal(t.lookup('70b3d57ecfffffff'), undefined);
    assert.equal(t.lookup('not an eui'), undefined);
    assert.equal(table({ joinEuiPrefix: '0123456789abcdef/64' }).lookup('0123456789abcdef'), 0);
    assert.equal(table({ joinEuiPrefix: '8000000000000000/1' }).lookup('ffffffffffffffff'), 0);
  });

  it('gives a JoinEUI under nested prefixes to the longest one', () => {
    const t = table(
      { joinEuiPrefix: '70b3d50000000000/24' },
      { joinEuiPrefix: '70b3d57ed0000000/36' },
      { joinEuiPrefix: '70b3d57ed0000100/56' },
    );
    assert.equal(t.lookup('70b3d57ed00001ff'), 2);
    assert.equal(t.lookup('70b3d57ed0000200'), 1);
    assert.equal(t.lookup('70b3d5ffffffffff'), 0);
  });

  it('matches a range, both ends included, beside prefixes it does not touch', () => {
    const t = table(
      { joinEuiRange: { first: '70b3d57ef0000000', last: '70b3d57ef00000ff' } },
      { joinEuiPrefix: '70b3d57ed0000000/36' },
    );
    assert.equal(t.lookup('70b3d57ef0000000'), 0);
    assert.equal(t.lookup('70b3d57ef00000ff'), 0);
    assert.equal(t.lookup('70b3d57ef0000100'), undefined);
    assert.equal(t.lookup('70b3d57ed1234567'), 1);
  });

  it('refuses overlaps that are not nested prefixes, and malformed entries, naming them', () => {
    const range = (first: string, last: string) => ({ joinEuiRange: { first, last } });
    refused(
      [
        range('0000000000000000', '00000000000000ff'),
        range('00000000000000ff', '0000000000000fff'),
      ],
      /joinServers\[1\] \(00000000000000ff\.\.0000000000000fff\) overlaps joinServers\[0\] .*a range may not overlap/,
    );
    refused(
      [{ joinEuiPrefix: '70b3d57ed0000000/36' }, range('70b3d57ed0000010', '70b3d57ed0000020')],
      /overlaps joinServers\[0\] \(70b3d57ed0000000\/36\)/,
    );
    refused(
      [{ joinEuiPrefix: '70b3d57ed0000000/36' }, { joinEuiPrefix: '70B3D57ED0000000/36' }],
      /the same prefix twice/,
    );
    refused(
      [{ joinEuiPrefix: '70b3d57ed0000001/36' }],
      /bits set after its first 36: did you mean 70b3d57ed0000000\/36/,
    );
    refused([{ joinEuiPrefix: '70b3d57ed0000000/0' }], /length of 1 to 64 bits/);
    refused([{ joinEuiPrefix: '70b3d57ed0000000/65' }], /length of 1 to 64 bits/);
    refused([{ joinEuiPrefix: '70b3d57ed0000000' }], /joinEuiPrefix must be/);
    refused([range('0000000000000010', '000000000000000f')], /ends before it starts/);
    refused([range('00000000000000', '000000000000000f')], /joinEuiRange must be/);
  });
});

describe('joinServers setting', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const entry = {
    joinEuiPrefix: '70b3d57ed0000000/36',
    url: 'https://js.example.org/bi',
    kekLabel: 'js.example.org',
    kekFile: '/etc/galet/js.kek',
  };

  it('checks every field of every entry', () => {
    assert.deepEqual(parseJoinServerSettings([entry]), [entry]);
    const bad: [unknown, RegExp][] = [
      [{}, /joinServers must be an array/],
      [[{ ...entry, extra: 1 }], /joinServers\[0\]: unknown field "extra"/],
      [
        [{ ...entry, joinEuiRange: { first: '0', last: '1' } }],
        /exactly one of joinEuiPrefix and joinEuiRange/,
      ],
      [[{ url: entry.url, kekLabel: 'x', kekFile: 'y' }], /exactly one of/],
      [[{ ...entry, url: 'ftp://js.example.org' }], /url must be an http/],
      [[{ ...entry, url: 'https://user:pw@js.example.org' }], /must not hold credentials/],
      [[{ ...entry, kekLabel: 'has space' }], /kekLabel must be 1 to 128 printable/],
      [[{ ...entry, kekFile: '' }], /kekFile must be a non-empty string/],
      [[{ ...entry, timeoutMs: 50 }], /timeoutMs must be an integer from 100 to 10000/],
      [[entry, { ...entry, name: 'again' }], /joinServers\[1\] .* overlaps joinServers\[0\]/],
    ];
    for (const [value, message] of bad) {
      assert.throws(() => parseJoinServerSettings(value), message);
    }
  });

  it('comes from the config file, GALET_JOIN_SERVERS or --join-servers, checked at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'galet-join-settings-'));
    dirs.push(dir);
    const config = join(dir, 'galet.json');
    await writeFile(config, JSON.stringify({ joinServers: [entry] }));
    assert.deepEqual(resolveStartOptions({ config }, {}).joinServers, [entry]);
    const fromEnv = [{ ...entry, joinEuiPrefix: '7000000000000000/4' }];
    assert.deepEqual(
      resolveStartOptions({ config }, { GALET_JOIN_SERVERS: JSON.stringify(fromEnv) }).joinServers,
      fromEnv,
    );
    assert.throws(
      () => resolveStartOptions({ joinServers: '[{"joinEuiPrefix":' }, {}),
      /--join-servers must be a JSON array of join servers/,
    );
    await writeFile(
      config,
      JSON.stringify({ joinServers: [entry, { ...entry, joinEuiPrefix: '70b3d57ed0000000/36' }] }),
    );
    assert.throws(
      () => resolveStartOptions({ config }, {}),
      /config "joinServers": joinServers\[1\] \(70b3d57ed0000000\/36\) overlaps joinServers\[0\] \(70b3d57ed0000000\/36\): the same prefix twice/,
    );
  });

  it('reads each KEK from its file, and warns when others may read it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'galet-join-keks-'));
    dirs.push(dir);
    const kek = randomBytes(16);
    const kekFile = join(dir, 'js.kek');
    await writeFile(kekFile, `${kek.toString('hex').toUpperCase()}\n`, { mode: 0o600 });
    const warnings: string[] = [];
    const logger = {
      ...silentLogger,
      warn: (_: object, message?: string) => warnings.push(message ?? ''),
    };
    const routes = await loadJoinServerRoutes([{ ...entry, kekFile }], logger);
    const route = routes.lookup('70b3d57ed0000001');
    assert.deepEqual(route?.kek, new Uint8Array(kek));
    assert.equal(route?.name, 'js.example.org');
    assert.equal(route?.timeoutMs, 3000);
    assert.deepEqual(warnings, []);

    await chmod(kekFile, 0o644);
    await loadJoinServerRoutes([{ ...entry, kekFile }], logger);
    assert.match(warnings.join(), /readable by other users/);

    await writeFile(kekFile, 'abcd\n');
    await assert.rejects(
      loadJoinServerRoutes([{ ...entry, kekFile }]),
      /joinServers\[0\]: kekFile .* must hold a KEK of 16, 24 or 32 bytes as hex/,
    );
  });

  it('counts what a join server answers and what it never does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'galet-join-counters-'));
    dirs.push(dir);
    const kekFile = join(dir, 'js.kek');
    await writeFile(kekFile, randomBytes(16).toString('hex'), { mode: 0o600 });
    const routes = await loadJoinServerRoutes([{ ...entry, kekFile, name: 'js' }]);
    const answers: unknown[] = [
      'not a JoinAns',
      {
        ProtocolVersion: '1.1',
        SenderID: '70b3d57ed0000001',
        ReceiverID: '000013',
        TransactionID: 0,
        MessageType: 'JoinAns',
        Result: { ResultCode: 'MICFailed' },
      },
    ];
    const directory = new JoinServerDirectory({
      routes,
      device: async () => ({ macVersion: '1.0.4', joinEui: '70b3d57ed0000001' }),
      logger: silentLogger,
      sender: () => async (message) => {
        const answer = answers.shift();
        // Answer the transaction asked (the client checks it).
        return typeof answer === 'object' && answer !== null
          ? { ...answer, TransactionID: (message as { TransactionID: number }).TransactionID }
          : answer;
      },
    });
    assert.equal(directory.forJoinEui('0000000000000001'), undefined);
    const routed = directory.forJoinEui('70b3d57ed0000001');
    assert.equal(routed?.name, 'js');
    // A JoinRequest of device 0102030405060708 (the MIC is the join server's business).
    const phyPayload = Buffer.from(
      '00010000d07ed5b3700807060504030201' + '0100' + '00000000',
      'hex',
    );
    const request = {
      phyPayload,
      netId: 0x13,
      devAddr: 0x26000001,
      dlSettings: { rx1DrOffset: 0, rx2Dr: 0 },
      rxDelay: 1,
    };
    const first = await routed!.joinServer.handleJoinRequest(request);
    assert.equal(first.result, 'JoinReqFailed');
    const second = await routed!.joinServer.handleJoinRequest(request);
    assert.equal(second.result, 'MICFailed');
    assert.deepEqual(directory.counters(), {
      joinRequests: { js: 2 },
      joinRequestsUnanswered: { js: 1 },
      joinRequestsUnauthorized: { js: 0 },
      joinsAccepted: { js: 0 },
      joinsRefused: { js: 1 },
    });
  });
});
