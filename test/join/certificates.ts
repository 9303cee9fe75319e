/**
 * Certificates for the mutual-TLS join tests, made at test time by openssl in a directory of the
 * test's: a CA of the network's client certificates, a CA that signed nothing the join server
 * trusts, the join server's certificate for 127.0.0.1 (signed by the first CA, which the network
 * trusts for it), and client certificates signed by each CA.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, constants, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  /** PEM files. */
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Signed by a CA the join server does not trust. */
  strangerCert: string;
  strangerKey: string;
}

/** The openssl program, or undefined when it is not installed (the test skips). */
export async function findOpenssl(): Promise<string | undefined> {
  for (const dir of ['/usr/bin', ...(process.env['PATH'] ?? '').split(delimiter)]) {
    const candidate = join(dir, 'openssl');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

export async function makeCertificates(openssl: string, dir: string): Promise<TestCertificates> {
  const path = (name: string) => join(dir, name);
  const call = async (...args: string[]) => {
    try {
      await run(openssl, args, { cwd: dir });
    } catch (error) {
      const { stderr } = error as { stderr?: string };
      throw new Error(`openssl ${args[0]} failed: ${stderr ?? (error as Error).message}`);
    }
  };
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const makeCa = (name: string, subject: string) =>
    call(
      ...['req', '-x509', ...ecKey, '-keyout', path(`${name}.key`), '-out', path(`${name}.pem`)],
      ...['-days', '2', '-subj', subject],
      ...['-addext', 'basicConstraints=critical,CA:TRUE'],
      ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    );
  await makeCa('ca', '/CN=Syndicate test CA');
  await makeCa('other-ca', '/CN=Some other CA');
  const signed = async (name: string, ca: string, subject: string, extensions: string) => {
    await call(
      ...['req', ...ecKey, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`)],
      ...['-subj', subject],
    );
    await writeFile(path(`${name}.ext`), extensions);
    await call(
      ...['x509', '-req', '-in', path(`${name}.csr`), '-CA', path(`${ca}.pem`)],
      ...['-CAkey', path(`${ca}.key`), '-set_serial', `0x${randomBytes(8).toString('hex')}`],
      ...['-days', '2', '-out', path(`${name}.pem`), '-extfile', path(`${name}.ext`)],
    );
  };
  await signed(
    'server',
    'ca',
    '/CN=127.0.0.1',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  const client = 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n';
  await signed('client', 'ca', '/CN=syndicate network server', client);
  await signed('stranger', 'other-ca', '/CN=syndicate network server', client);
  return {
    ca: path('ca.pem'),
    serverCert: path('server.pem'),
    serverKey: path('server.key'),
    clientCert: path('client.pem'),
    clientKey: path('client.key'),
    strangerCert: path('stranger.pem'),
    strangerKey: path('stranger.key'),
  };
}
