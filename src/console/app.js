// The console's shell: who is logged in, the hash routes, the login form and logout.

import { ApiFailure, api } from './api.js';
import { h, refreshRelativeTimes, replaceChildren } from './dom.js';
import { applicationsView, applicationView, deviceView, gatewaysView } from './views.js';

const main = document.getElementById('view');
const header = document.getElementById('top');
const who = document.getElementById('who');
const logoutButton = document.getElementById('logout');

const HOME = '#/applications';
const ROUTES = [
  [/^#\/applications$/, applicationsView],
  [/^#\/applications\/([^/]+)$/, applicationView],
  [/^#\/devices\/([0-9a-fA-F]{16})$/, deviceView],
  [/^#\/gateways$/, gatewaysView],
];

/** The logged-in user (`/auth/me`), null when logged out, undefined before we know. */
let me;
/** The page on screen; replaced at each route change. */
let current = newPage();
/** A message for the login form (session ended, logged out). */
let loginNotice = '';

function newPage() {
  const leaving = [];
  const page = {
    alive: true,
    /** Runs `callback` when the page goes (at once if it went while the view was loading). */
    onLeave(callback) {
      if (page.alive) leaving.push(callback);
      else callback();
    },
    leave() {
      page.alive = false;
      for (const callback of leaving.splice(0)) callback();
    },
    sessionEnded() {
      if (!page.alive) return;
      me = null;
      loginNotice = 'Your session has ended: log in again.';
      void render();
    },
  };
  return page;
}

async function render() {
  current.leave();
  const page = newPage();
  current = page;
  const hash = location.hash === '' ? HOME : location.hash;
  if (me === undefined) {
    try {
      const answer = await api('GET', '/auth/me');
      me = answer.kind === 'user' ? answer.user : null;
    } catch (error) {
      if (!(error instanceof ApiFailure && error.status === 401)) {
        showFailure(page, error);
        return;
      }
      me = null;
    }
    if (!page.alive) return;
  }
  showHeader(hash);
  if (me === null) {
    show(page, loginView(hash === '#/login' ? HOME : hash));
    return;
  }
  if (hash === '#/login') {
    go(HOME);
    return;
  }
  for (const [pattern, view] of ROUTES) {
    const match = pattern.exec(hash);
    if (match === null) continue;
    show(page, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const parameters = match.slice(1).map(decodeURIComponent);
      const content = await view(page, ...parameters);
      show(page, content);
    } catch (error) {
      if (error instanceof ApiFailure && error.status === 401) page.sessionEnded();
      else showFailure(page, error);
    }
    return;
  }
  show(page, h('section', {}, h('h1', {}, 'Not found'), h('p', {}, 'No page here.')));
}

function show(page, content) {
  if (page.alive) replaceChildren(main, content);
}

function showFailure(page, error) {
  const message =
    error instanceof ApiFailure && error.status === 404
      ? 'Not found, or not yours to see.'
      : error.message;
  show(
    page,
    h(
      'section',
      {},
      h('h1', {}, 'Something went wrong'),
      h('p', { class: 'error', role: 'alert' }, message),
    ),
  );
}

function showHeader(hash) {
  header.hidden = me === null || me === undefined;
  who.textContent = me?.email ?? '';
  for (const anchor of header.querySelectorAll('nav a')) {
    const section = anchor.getAttribute('href');
    const here =
      hash === section || (section === HOME && /^#\/(applications|devices)\//.test(hash));
    if (here) anchor.setAttribute('aria-current', 'page');
    else anchor.removeAttribute('aria-current');
  }
}

/** Goes to `hash` (rendering again when it is the current one, which fires no hashchange). */
function go(hash) {
  if (location.hash === hash) void render();
  else location.hash = hash;
}

function loginView(next) {
  const field = (label, input, hint) =>
    h('p', { class: 'field' }, h('label', { for: input.id }, label), input, hint);
  const email = h('input', {
    id: 'email',
    name: 'email',
    type: 'email',
    autocomplete: 'username',
    required: true,
  });
  const password = h('input', {
    id: 'password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const totp = h('input', {
    id: 'totp',
    name: 'totp',
    type: 'text',
    inputmode: 'numeric',
    autocomplete: 'one-time-code',
    pattern: '[0-9]{6}',
    maxlength: '6',
  });
  const totpField = field(
    'TOTP code',
    totp,
    h('small', {}, 'The 6-digit code your authenticator app shows for Galet.'),
  );
  totpField.hidden = true;
  const error = h('p', { class: 'error', role: 'alert', id: 'login-error' });
  const notice = h('p', { class: 'notice', role: 'status' }, loginNotice);
  loginNotice = '';
  const submit = h('button', { type: 'submit' }, 'Log in');
  // Single sign-on, when the server has OpenID Connect on (GET /auth/oidc).
  const singleSignOn = h('p', { class: 'sso', id: 'oidc-login', hidden: true });
  api('GET', '/auth/oidc')
    .then((answer) => {
      if (answer?.enabled !== true || typeof answer.startUrl !== 'string') return;
      if (!answer.startUrl.startsWith('/api/v1/')) return;
      const name = typeof answer.displayName === 'string' ? answer.displayName : 'single sign-on';
      singleSignOn.append(h('a', { href: answer.startUrl }, `Sign in with ${name}`));
      singleSignOn.hidden = false;
    })
    .catch(() => {
      // A server without OIDC login: the password form only.
    });
  const form = h(
    'form',
    { class: 'login', method: 'post' },
    h('h1', {}, 'Galet console'),
    notice,
    field('E-mail', email),
    field('Password', password),
    totpField,
    error,
    submit,
    singleSignOn,
  );
  form.addEventListener('submit', async (submitted) => {
    submitted.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    notice.textContent = '';
    const body = { email: email.value.trim(), password: password.value };
    if (!totpField.hidden && totp.value.trim() !== '') body.totp = totp.value.trim();
    try {
      const answer = await api('POST', '/auth/login', body);
      me = answer.user;
      password.value = '';
      go(next);
    } catch (failure) {
      error.textContent = loginFailureText(failure, !totpField.hidden);
      if (failure instanceof ApiFailure && failure.code === 'TOTP_REQUIRED') {
        totpField.hidden = false;
        totp.required = true;
        totp.focus();
      } else if (!totpField.hidden) {
        totp.value = '';
        totp.focus();
      } else {
        password.select();
      }
    } finally {
      submit.disabled = false;
    }
  });
  queueMicrotask(() => email.focus());
  return form;
}

function loginFailureText(failure, totpAsked) {
  if (!(failure instanceof ApiFailure)) return String(failure.message ?? failure);
  switch (failure.code) {
    case 'TOTP_REQUIRED':
      return 'This account needs a TOTP code: enter the code from your authenticator app.';
    case 'UNAUTHORIZED':
      return totpAsked ? 'Invalid email, password or TOTP code.' : 'Invalid email or password.';
    case 'TOO_MANY_REQUESTS':
      return `Too many failed logins: try again in ${failure.retryAfterSeconds ?? 'a few'} s.`;
    default:
      return failure.message;
  }
}

logoutButton.addEventListener('click', async () => {
  logoutButton.disabled = true;
  try {
    await api('POST', '/auth/logout');
  } catch (error) {
    // A session that ended already is as good as logged out.
    if (!(error instanceof ApiFailure && error.status === 401)) {
      logoutButton.disabled = false;
      window.alert(`Logout failed: ${error.message}`);
      return;
    }
  }
  logoutButton.disabled = false;
  me = null;
  loginNotice = 'You are logged out.';
  go('#/login');
});

window.addEventListener('hashchange', () => void render());
setInterval(() => refreshRelativeTimes(main), 15_000);
void render();
