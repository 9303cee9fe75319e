/**
 * The CLI's questions (src/cli/prompt.ts) in a real terminal: `galet login` and `galet user add`
 * run in a tmux pseudo-terminal against a real Galet, keys typed one by one, the screen read
 * back. A password is never echoed, an edited answer is the one taken, Ctrl-C and Ctrl-D end
 * the command with a line saying why; without a terminal the command fails at once instead of
 * waiting for an answer nobody can give.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromBase32, totp } from '../../src/platform/totp.js';
import { removeDir, startTestGalet, TEST_ADMIN_TOKEN, type TestGalet } from '../helpers/galet.js';
import { cliEntry } from './built-cli.js';
import type { CliRun } from './run-cli.js';
import { Terminal, tmuxMissing } from './terminal.js';

const PASSWORD = 'correct horse battery staple';
const NO_STACK_TRACE = /\n\s+at |Error:|node:internal/;
/** The line a prompt leaves when nothing was echoed after it. */
const bare = (prompt: string) => new RegExp(`^${prompt}: *$`, 'm');

const skip = await tmuxMissing();

describe('galet prompts in a terminal', { skip, concurrency: true }, () => {
  let galet: TestGalet;
  let home: string;
  let tenantId: string;
  /** `--url` and `--token` of the operator. */
  let admin: string[];
  let userCount = 0;
  const open: Terminal[] = [];

  /**
   * `galet <args>` in a new terminal with its own configuration directory; with `stdoutTo`, its
   * standard output goes to that file (the terminal keeps standard input and standard error).
   */
  const terminal = async (
    args: string[],
    configDir: string,
    stdoutTo?: string,
  ): Promise<Terminal> => {
    const opened = await Terminal.open(
      [process.execPath, cliEntry, ...args],
      {
        XDG_CONFIG_HOME: configDir,
        GALET_DATA_DIR: home,
        GALET_TOKEN: '',
        GALET_ADMIN_TOKEN: '',
        GALET_URL: '',
      },
      stdoutTo,
    );
    open.push(opened);
    return opened;
  };
  /** A new console user of the tenant with PASSWORD. */
  const newUser = async (): Promise<string> => {
    const email = `agent${++userCount}@feurs.fr`;
    const created = await galet.request('POST', '/api/v1/users', {
      email,
      password: PASSWORD,
      tenantId,
      role: 'viewer',
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    return email;
  };
  const credentials = async (configDir: string) =>
    JSON.parse(await readFile(join(configDir, 'galet', 'credentials.json'), 'utf8'));

  before(async () => {
    galet = await startTestGalet();
    home = await mkdtemp(join(tmpdir(), 'galet-prompts-'));
    const tenant = await galet.request('POST', '/api/v1/tenants', { name: 'Feurs' });
    assert.equal(tenant.status, 201, JSON.stringify(tenant.json));
    tenantId = tenant.json.id;
    admin = ['--url', galet.baseUrl, '--token', TEST_ADMIN_TOKEN];
  });

  after(async () => {
    await Promise.all(open.map((t) => t.close()));
    await galet?.stop();
    if (galet !== undefined) await removeDir(galet.dataDir);
    if (home !== undefined) await removeDir(home);
  });

  it('login asks the e-mail (echoed) and the password (not echoed), takes the edited password and keeps the session', async () => {
    const email = await newUser();
    const config = join(home, 'login');
    const t = await terminal(['login', '--url', galet.baseUrl], config);
    await t.waitFor(bare('e-mail'));
    await t.type(email);
    await t.waitFor(new RegExp(`^e-mail: ${email}$`, 'm'));
    await t.press('Enter');
    await t.waitFor(bare('password'));
    // A typo corrected with backspace: the password sent is the corrected one.
    await t.type(`${PASSWORD.slice(0, -1)}X`);
    await t.press('BSpace');
    await t.type(PASSWORD.slice(-1));
    await t.press('Enter');
    const { status, screen } = await t.exit();
    assert.equal(status, 0, screen);
    assert.ok(!screen.includes('horse'), `the password was echoed:\n${screen}`);
    assert.match(screen, bare('password'));
    assert.match(screen, /"kind": "session"/);
    const stored = await credentials(config);
    assert.equal(stored.servers[galet.baseUrl].kind, 'session');
    assert.equal(stored.servers[galet.baseUrl].email, email);
  });

  it('login asks the TOTP code of an account with a second factor; the answer goes to standard output, the questions to the terminal', async () => {
    const email = await newUser();
    const session = await fetch(`${galet.baseUrl}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    const { token } = (await session.json()) as { token: string };
    const authorization = { authorization: `Bearer ${token}` };
    const setup = await fetch(`${galet.baseUrl}/api/v1/auth/totp/setup`, {
      method: 'POST',
      headers: authorization,
    });
    const secret = fromBase32(((await setup.json()) as { secret: string }).secret) as Uint8Array;
    const enable = await fetch(`${galet.baseUrl}/api/v1/auth/totp/enable`, {
      method: 'POST',
      headers: { ...authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ code: totp(secret, Date.now()) }),
    });
    assert.equal(enable.status, 204);

    const config = join(home, 'totp');
    const out = join(home, 'totp.json');
    const t = await terminal(['login', '--url', galet.baseUrl, '--email', email], config, out);
    await t.waitFor(bare('password'));
    await t.type(PASSWORD);
    await t.press('Enter');
    await t.waitFor(bare('TOTP code'));
    // The next period's code: the current one was spent enabling the factor.
    const code = totp(secret, Date.now() + 30_000);
    await t.type(code);
    await t.press('Enter');
    const { status, screen } = await t.exit();
    assert.equal(status, 0, screen);
    assert.match(screen, bare('password'));
    assert.match(screen, new RegExp(`^TOTP code: ${code}$`, 'm'));
    assert.ok(!screen.includes('horse'), `the password was echoed:\n${screen}`);
    assert.doesNotMatch(screen, /"kind"/, 'the JSON answer is not on the terminal');
    const answer = JSON.parse(await readFile(out, 'utf8'));
    assert.deepEqual([answer.kind, answer.user.email], ['session', email]);
    assert.equal((await credentials(config)).servers[galet.baseUrl].kind, 'session');
  });

  it('user add asks the new password twice, echoes neither, and creates a user who can log in with it', async () => {
    const t = await terminal(
      [
        'user',
        'add',
        '--email',
        'nouvelle@feurs.fr',
        '--tenant',
        tenantId,
        '--role',
        'admin',
        ...admin,
      ],
      join(home, 'user-add'),
    );
    await t.waitFor(bare('new password'));
    await t.type(PASSWORD);
    await t.press('Enter');
    await t.waitFor(bare('again'));
    await t.type(PASSWORD);
    await t.press('Enter');
    const { status, screen } = await t.exit();
    assert.equal(status, 0, screen);
    assert.match(screen, bare('new password'));
    assert.match(screen, bare('again'));
    assert.ok(!screen.includes('horse'), `the password was echoed:\n${screen}`);
    assert.match(screen, /"email": "nouvelle@feurs\.fr"/);
    const login = await fetch(`${galet.baseUrl}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'nouvelle@feurs.fr', password: PASSWORD }),
    });
    assert.equal(login.status, 200, 'the password typed is the one set');
  });

  it('user add refuses two different passwords before sending anything', async () => {
    const t = await terminal(
      [
        'user',
        'add',
        '--email',
        'distrait@feurs.fr',
        '--tenant',
        tenantId,
        '--role',
        'viewer',
        ...admin,
      ],
      join(home, 'mismatch'),
    );
    await t.waitFor(bare('new password'));
    await t.type(PASSWORD);
    await t.press('Enter');
    await t.waitFor(bare('again'));
    await t.type(`${PASSWORD}!`);
    await t.press('Enter');
    const { status, screen } = await t.exit();
    assert.equal(status, 1, screen);
    assert.match(screen, /^again: *\ngalet: the two passwords differ$/m);
    assert.ok(!screen.includes('horse'), `a password was echoed:\n${screen}`);
    assert.doesNotMatch(screen, NO_STACK_TRACE);
    const users = await galet.request('GET', '/api/v1/users?search=distrait');
    assert.deepEqual(users.json.users, [], 'no user created');
  });

  it('Ctrl-C at the password prompt ends login with status 1, one line and no stack trace', async () => {
    const config = join(home, 'interrupted');
    const t = await terminal(['login', '--url', galet.baseUrl, '--email', 'a@feurs.fr'], config);
    await t.waitFor(bare('password'));
    await t.type('half a pass');
    await t.press('C-c');
    const { status, screen } = await t.exit();
    assert.equal(status, 1, screen);
    assert.match(screen, /^password: *\ngalet: interrupted$/m);
    assert.ok(!screen.includes('half'), `the password was echoed:\n${screen}`);
    assert.doesNotMatch(screen, NO_STACK_TRACE);
    await assert.rejects(credentials(config), { code: 'ENOENT' }, 'nothing stored');
  });

  it('Ctrl-C at the e-mail prompt ends login with status 1 and one line', async () => {
    const t = await terminal(['login', '--url', galet.baseUrl], join(home, 'email-ctrl-c'));
    await t.waitFor(bare('e-mail'));
    await t.type('agent@');
    await t.waitFor(/^e-mail: agent@$/m);
    await t.press('C-c');
    const { status, screen } = await t.exit();
    assert.equal(status, 1, screen);
    assert.match(screen, /^e-mail: agent@\ngalet: interrupted$/m);
    assert.doesNotMatch(screen, bare('password'), 'no further question');
    assert.doesNotMatch(screen, NO_STACK_TRACE);
  });

  it('Ctrl-D at the e-mail prompt ends login with status 1 and says what was missing', async () => {
    const t = await terminal(['login', '--url', galet.baseUrl], join(home, 'email-ctrl-d'));
    await t.waitFor(bare('e-mail'));
    await t.press('C-d');
    const { status, screen } = await t.exit();
    assert.equal(status, 1, screen);
    assert.match(
      screen,
      /^e-mail: *\ngalet: an e-mail address \(--email\) is needed and the input ended$/m,
    );
    assert.doesNotMatch(screen, bare('password'), 'no further question');
    assert.doesNotMatch(screen, NO_STACK_TRACE);
  });
});

describe('galet prompts without a terminal', { concurrency: true }, () => {
  /**
   * `galet <args>` with standard input a pipe that stays open (a script's input, say): it must
   * end by itself, not wait for an answer.
   */
  const withoutTerminal = (args: string[]): Promise<CliRun> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [cliEntry, ...args], {
        env: {
          ...process.env,
          XDG_CONFIG_HOME: '/nonexistent',
          GALET_DATA_DIR: '/nonexistent',
          GALET_TOKEN: '',
          GALET_URL: '',
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const waiting = setTimeout(() => {
        child.kill();
        reject(new Error(`galet ${args.join(' ')} is still waiting after 10 s`));
      }, 10_000);
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        stdout += text;
      });
      child.stderr.setEncoding('utf8').on('data', (text: string) => {
        stderr += text;
      });
      child.on('close', (status) => {
        clearTimeout(waiting);
        child.stdin.destroy();
        resolve({ status, stdout, stderr });
      });
    });
  const noTerminal = (what: string): CliRun => ({
    status: 1,
    stdout: '',
    stderr: `galet: ${what} is needed and there is no terminal to ask it\n`,
  });

  it('login fails at once, naming the missing answer and the option that gives it', async () => {
    const url = ['--url', 'http://127.0.0.1:9'];
    assert.deepEqual(
      await withoutTerminal(['login', ...url]),
      noTerminal('an e-mail address (--email)'),
    );
    assert.deepEqual(
      await withoutTerminal(['login', '--email', 'a@feurs.fr', ...url]),
      noTerminal('a password (--password-stdin)'),
    );
  });

  it('user add fails at once without --password-stdin', async () => {
    const args = ['user', 'add', '--email', 'a@feurs.fr', '--url', 'http://127.0.0.1:9'];
    assert.deepEqual(
      await withoutTerminal([...args, '--token', 'x']),
      noTerminal('a password (--password-stdin)'),
    );
  });
});
