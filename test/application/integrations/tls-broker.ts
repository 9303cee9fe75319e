// A Mosquitto of the test's own on 127.0.0.1 (the shared broker on :1883 is left alone): TLS
// only, password authentication (`allow_anonymous false`), certificates made at test time by
// openssl in a temporary directory. One listener checks the password; a second one also
// requires a client certificate signed by the test CA (mutual TLS).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../helpers/sockets.js';

const run = promisify(execFile);

export interface TlsBrokerUser {
  username: string;
  password: string;
  /** The password alone in a file (mode 0600), as `--mqtt-password-file` takes it. */
  passwordFile: string;
}

export interface TlsBroker {
  /** `mqtts://127.0.0.1:<port>`: TLS and a password. */
  url: string;
  /** `mqtts://127.0.0.1:<port>`: TLS, a client certificate and a password. */
  mutualTlsUrl: string;
  /** PEM files. */
  files: {
    ca: string;
    /** A CA that signed nothing the broker holds. */
    otherCa: string;
    clientCert: string;
    clientKey: string;
  };
  /** Galet's user and a subscriber's. */
  users: { galet: TlsBrokerUser; reader: TlsBrokerUser };
  /** What Mosquitto wrote, for failure messages. */
  output: string[];
  stop(): Promise<void>;
}

/** The programs the broker needs, or why it cannot be started (a skip message). */
export async function tlsBrokerTools(): Promise<
  { mosquitto: string; mosquittoPasswd: string; openssl: string } | { missing: string }
> {
  const mosquitto = await findProgram('mosquitto', ['/usr/sbin/mosquitto']);
  const mosquittoPasswd = await findProgram('mosquitto_passwd', ['/usr/bin/mosquitto_passwd']);
  const openssl = await findProgram('openssl', ['/usr/bin/openssl']);
  if (mosquitto === undefined) return { missing: 'mosquitto (the broker) is not installed' };
  if (openssl === undefined) return { missing: 'openssl is not installed' };
  // Mosquitto 2 reads only hashed password files; mosquitto_passwd (same package) hashes them.
  if (mosquittoPasswd === undefined) {
    return { missing: 'mosquitto_passwd is not installed: it hashes the broker password file' };
  }
  return { mosquitto, mosquittoPasswd, openssl };
}

async function findProgram(name: string, known: string[]): Promise<string | undefined> {
  const candidates = [
    ...known,
    ...(process.env['PATH'] ?? '').split(delimiter).map((dir) => join(dir, name)),
  ];
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

/** Makes the certificates, the password file and the config, and starts Mosquitto. */
export async function startTlsBroker(tools: {
  mosquitto: string;
  mosquittoPasswd: string;
  openssl: string;
}): Promise<TlsBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'galet-tls-broker-'));
  const path = (name: string) => join(dir, name);
  let child: ChildProcess | undefined;
  try {
    const openssl = async (...args: string[]) => {
      try {
        await run(tools.openssl, args, { cwd: dir });
      } catch (error) {
        const { stderr } = error as { stderr?: string };
        throw new Error(`openssl ${args[0]} failed: ${stderr ?? (error as Error).message}`);
      }
    };
    const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    const makeCa = (name: string, subject: string) =>
      openssl(
        ...['req', '-x509', ...ecKey, '-keyout', path(`${name}.key`), '-out', path(`${name}.pem`)],
        ...['-days', '2', '-subj', subject],
        ...['-addext', 'basicConstraints=critical,CA:TRUE'],
        ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
      );
    await makeCa('ca', '/CN=Galet test CA');
    await makeCa('other-ca', '/CN=Some other CA');
    const signed = async (name: string, subject: string, extensions: string) => {
      await openssl(
        ...['req', ...ecKey, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`)],
        ...['-subj', subject],
      );
      await writeFile(path(`${name}.ext`), extensions);
      await openssl(
        ...['x509', '-req', '-in', path(`${name}.csr`), '-CA', path('ca.pem')],
        ...['-CAkey', path('ca.key'), '-set_serial', `0x${randomBytes(8).toString('hex')}`],
        ...['-days', '2', '-out', path(`${name}.pem`), '-extfile', path(`${name}.ext`)],
      );
    };
    await signed(
      'server',
      '/CN=127.0.0.1',
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
    );
    await signed('client', '/CN=galet', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');

    const users = {
      galet: await user('galet'),
      reader: await user('reader'),
    };
    // Written in clear, then hashed in place (-U): no password on a command line.
    await writeFile(
      path('passwords'),
      `${users.galet.username}:${users.galet.password}\n${users.reader.username}:${users.reader.password}\n`,
      { mode: 0o600 },
    );
    try {
      await run(tools.mosquittoPasswd, ['-U', path('passwords')]);
    } catch (error) {
      throw new Error(`mosquitto_passwd -U failed: ${(error as Error).message}`);
    }

    const port = await freePort();
    const mutualTlsPort = await freePort();
    const tlsFiles = [
      `cafile ${path('ca.pem')}`,
      `certfile ${path('server.pem')}`,
      `keyfile ${path('server.key')}`,
    ];
    await writeFile(
      path('mosquitto.conf'),
      [
        'per_listener_settings false',
        'allow_anonymous false',
        `password_file ${path('passwords')}`,
        'persistence false',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        // Run as root, Mosquitto would switch to the user "mosquitto", who cannot read the
        // temporary files: keep the user running the tests (ignored when not root).
        `user ${userInfo().username}`,
        `listener ${port} 127.0.0.1`,
        ...tlsFiles,
        `listener ${mutualTlsPort} 127.0.0.1`,
        ...tlsFiles,
        'require_certificate true',
        '',
      ].join('\n'),
    );

    const output: string[] = [];
    const broker = spawn(tools.mosquitto, ['-c', path('mosquitto.conf')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = broker;
    broker.stdout!.setEncoding('utf8').on('data', (text: string) => output.push(text));
    broker.stderr!.setEncoding('utf8').on('data', (text: string) => output.push(text));
    await untilListening(broker, [port, mutualTlsPort], output);

    return {
      url: `mqtts://127.0.0.1:${port}`,
      mutualTlsUrl: `mqtts://127.0.0.1:${mutualTlsPort}`,
      files: {
        ca: path('ca.pem'),
        otherCa: path('other-ca.pem'),
        clientCert: path('client.pem'),
        clientKey: path('client.key'),
      },
      users,
      output,
      async stop() {
        await stopProcess(broker);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    if (child !== undefined) await stopProcess(child);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  async function user(username: string): Promise<TlsBrokerUser> {
    const password = randomBytes(12).toString('base64url');
    const passwordFile = path(`${username}.password`);
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    return { username, password, passwordFile };
  }
}

/** Resolves once every port takes a TCP connection; throws if Mosquitto exits first. */
async function untilListening(
  broker: ChildProcess,
  ports: number[],
  output: string[],
): Promise<void> {
  const deadline = Date.now() + 5000;
  for (const port of ports) {
    for (;;) {
      if (broker.exitCode !== null || broker.signalCode !== null) {
        throw new Error(`mosquitto exited (${broker.exitCode}): ${output.join('')}`);
      }
      if (await accepts(port)) break;
      if (Date.now() > deadline) {
        throw new Error(`mosquitto does not listen on ${port}: ${output.join('')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
    socket.connect(port, '127.0.0.1');
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
