// The pages after login: applications, an application's devices, a device with its events
// (live over server-sent events), gateways. Each view returns its content; a `page` is the
// route being shown (`page.alive` turns false and `page.onLeave` callbacks run when it goes).

import { ApiFailure, api, withQuery } from './api.js';
import { base64Length, base64ToHex, h, link, timeAgo, truncate } from './dom.js';

const PAGE_SIZE = 50;
/** Event rows kept on a device page; older ones are dropped as live ones come. */
const MAX_EVENT_ROWS = 100;
/** The event types Galet stores (ChirpStack's), each its own SSE event name. */
const EVENT_TYPES = ['up', 'join', 'ack', 'txack', 'status', 'log', 'location', 'integration'];

const BLIND_EXPLANATION =
  "This Galet does not hold the device's AppSKey: its payloads pass through the network " +
  'encrypted, and only the service provider whose join server activates it can read them.';

/** The badge of a device the operator cannot decrypt (the API's `operatorCanDecrypt: false`). */
export function blindBadge() {
  return h('span', { class: 'badge blind', title: BLIND_EXPLANATION }, 'operator cannot decrypt');
}

const enc = encodeURIComponent;

/**
 * A table filled page by page from a list route (`{items, nextCursor}`), with a "Show more"
 * button while there is a next page.
 */
async function pagedTable({ columns, name, empty, fetchPage, row }) {
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'list', 'data-list': name },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map((title) => h('th', { scope: 'col' }, title)),
      ),
    ),
    tbody,
  );
  const emptyNote = h('p', { class: 'muted', hidden: true }, empty);
  const failure = h('p', { class: 'error', role: 'alert', hidden: true });
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'Show more');
  let cursor;
  const load = async () => {
    more.disabled = true;
    const { items, nextCursor } = await fetchPage(cursor);
    for (const item of items) tbody.append(row(item));
    cursor = nextCursor ?? undefined;
    more.hidden = cursor === undefined;
    more.disabled = false;
    emptyNote.hidden = tbody.childElementCount > 0;
    table.hidden = tbody.childElementCount === 0;
  };
  more.addEventListener('click', () => {
    failure.hidden = true;
    load().catch((error) => {
      more.disabled = false;
      failure.textContent = error.message;
      failure.hidden = false;
    });
  });
  await load();
  return h('div', {}, table, emptyNote, failure, more);
}

export async function applicationsView() {
  const list = await pagedTable({
    name: 'applications',
    columns: ['Application', 'ID', 'Created'],
    empty: 'No application that you may see.',
    fetchPage: async (cursor) => {
      const answer = await api('GET', withQuery('/applications', { limit: PAGE_SIZE, cursor }));
      return { items: answer.applications, nextCursor: answer.nextCursor };
    },
    row: (application) =>
      h(
        'tr',
        { 'data-application-id': application.id },
        h('td', {}, link(['applications', application.id], application.name)),
        h('td', { class: 'mono' }, application.id),
        h('td', {}, timeAgo(application.createdAt)),
      ),
  });
  return h('section', {}, h('h1', {}, 'Applications'), list);
}

export async function applicationView(_page, applicationId) {
  const application = await api('GET', `/applications/${enc(applicationId)}`);
  const list = await pagedTable({
    name: 'devices',
    columns: ['Device', 'DevEUI', 'FCnt up', 'Last seen', 'Payloads'],
    empty: 'This application has no device yet.',
    fetchPage: async (cursor) => {
      const answer = await api(
        'GET',
        withQuery('/devices', {
          applicationId,
          limit: PAGE_SIZE,
          // A cursor carries the sort it was made with.
          sort: cursor === undefined ? 'name' : undefined,
          cursor,
        }),
      );
      return { items: answer.devices, nextCursor: answer.nextCursor };
    },
    // A list item carries the session state and whether this Galet decrypts (issue #6).
    row: (device) =>
      h(
        'tr',
        { 'data-dev-eui': device.devEui },
        h('td', {}, link(['devices', device.devEui], device.name)),
        h('td', { class: 'mono' }, device.devEui),
        h('td', { class: 'num', 'data-field': 'fCntUp' }, String(device.fCntUp ?? '—')),
        h('td', {}, timeAgo(device.lastSeenAt)),
        h(
          'td',
          { 'data-field': 'payloads' },
          device.operatorCanDecrypt === false
            ? blindBadge()
            : h('span', { class: 'muted' }, 'decrypted by this Galet'),
        ),
      ),
  });
  return h(
    'section',
    {},
    h('p', { class: 'crumbs' }, link(['applications'], 'Applications'), ' / '),
    h('h1', {}, application.name),
    h('p', { class: 'muted mono' }, application.id),
    h('h2', {}, 'Devices'),
    list,
  );
}

export async function deviceView(page, devEuiParameter) {
  const devEui = devEuiParameter.toLowerCase();
  const [device, history] = await Promise.all([
    api('GET', `/devices/${enc(devEui)}`),
    api('GET', withQuery(`/devices/${enc(devEui)}/events`, { limit: 20 })),
  ]);
  const application = await api('GET', `/applications/${enc(device.applicationId)}`).catch(
    () => undefined,
  );

  const fCntUp = h('dd', { 'data-field': 'fCntUp' }, device.fCntUp ?? '—');
  const lastSeen = h('dd', { 'data-field': 'lastSeen' }, timeAgo(device.lastSeenAt));
  const facts = h(
    'dl',
    { class: 'facts' },
    fact('DevEUI', h('span', { class: 'mono' }, device.devEui)),
    fact(
      'Application',
      link(['applications', device.applicationId], application?.name ?? device.applicationId),
    ),
    fact(
      'Payloads',
      device.operatorCanDecrypt === false ? blindBadge() : 'decrypted by this Galet',
    ),
    fact('Activation', `${String(device.activation).toUpperCase()}, LoRaWAN ${device.macVersion}`),
    fact('Class', device.deviceClass),
    fact('DevAddr', device.devAddr ?? '—'),
    h('dt', {}, 'FCnt up'),
    fCntUp,
    fact('FCnt down', device.fCntDown ?? '—'),
    h('dt', {}, 'Last seen'),
    lastSeen,
    fact('Battery', battery(device.deviceStatus)),
  );

  const status = h('span', { class: 'stream', 'data-state': 'connecting' }, 'connecting…');
  const tbody = h('tbody');
  const seen = new Set();
  for (const event of history.events) {
    seen.add(event.id);
    tbody.append(eventRow(event, false));
  }
  const emptyNote = h(
    'p',
    { class: 'muted', hidden: tbody.childElementCount > 0 },
    'No event yet.',
  );
  const notice = h('p', { class: 'muted', hidden: true });
  const table = h(
    'table',
    { class: 'list events', 'data-list': 'events' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Time', 'Event', 'FCnt', 'FPort', 'Payload', 'Radio'].map((title) =>
          h('th', { scope: 'col' }, title),
        ),
      ),
    ),
    tbody,
  );

  // Live events: from the newest one shown, so that none falls between the list and the stream.
  const newest = history.events[0]?.id;
  const source = new EventSource(
    withQuery(`/api/v1/devices/${enc(devEui)}/events/stream`, { lastEventId: newest }),
  );
  page.onLeave(() => source.close());
  const setStatus = (state, text) => {
    status.dataset.state = state;
    status.textContent = text;
    status.removeAttribute('title');
  };
  source.addEventListener('open', () => setStatus('live', 'live'));
  source.addEventListener('error', () => {
    if (source.readyState !== EventSource.CLOSED) {
      setStatus('reconnecting', 'reconnecting…');
      return;
    }
    setStatus('closed', 'live events unavailable');
    status.title =
      'The stream was refused: the session ended, too many streams are open, or this Galet ' +
      'runs the network role alone (no event streams there). Reload the page to try again.';
    // A stream refused with 401 means the session ended.
    api('GET', '/auth/me').catch((error) => {
      if (error instanceof ApiFailure && error.status === 401) page.sessionEnded();
    });
  });
  const onEvent = (type) => (message) => {
    const id = Number(message.lastEventId);
    if (seen.has(id)) return;
    let body;
    try {
      body = JSON.parse(message.data);
    } catch {
      return;
    }
    seen.add(id);
    const event = { ...body, id, event: type };
    tbody.prepend(eventRow(event, true));
    while (tbody.childElementCount > MAX_EVENT_ROWS) tbody.lastElementChild.remove();
    emptyNote.hidden = true;
    if (type === 'up') {
      if (typeof event.fCnt === 'number') fCntUp.textContent = String(event.fCnt);
      if (typeof event.time === 'string') lastSeen.replaceChildren(timeAgo(event.time));
    }
  };
  for (const type of EVENT_TYPES) source.addEventListener(type, onEvent(type));
  source.addEventListener('replay-truncated', () => {
    notice.textContent = 'Some events were skipped while the stream caught up: reload to see them.';
    notice.hidden = false;
  });

  return h(
    'section',
    {},
    h(
      'p',
      { class: 'crumbs' },
      link(['applications'], 'Applications'),
      ' / ',
      link(['applications', device.applicationId], application?.name ?? 'Application'),
      ' / ',
    ),
    h('h1', {}, device.name, ' ', device.operatorCanDecrypt === false ? blindBadge() : null),
    facts,
    h('h2', {}, 'Events ', status),
    notice,
    table,
    emptyNote,
  );
}

function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

function battery(status) {
  if (status === null || status === undefined) return '—';
  if (status.battery === 0) return 'external power';
  if (status.battery === 255 || typeof status.battery !== 'number') return 'unknown';
  return `${Math.round((status.battery / 254) * 100)} %`;
}

function eventRow(event, live) {
  const time =
    typeof event.time === 'string'
      ? h(
          'time',
          { datetime: event.time, title: event.time },
          new Date(event.time).toLocaleString(),
        )
      : '';
  return h(
    'tr',
    { 'data-event-id': event.id, 'data-event': event.event, class: live ? 'live' : null },
    h('td', {}, time),
    h('td', {}, event.event),
    h('td', { class: 'num' }, event.fCnt ?? event.fCntDown ?? ''),
    h('td', { class: 'num' }, event.fPort ?? ''),
    h('td', { class: 'payload' }, payloadSummary(event)),
    h('td', {}, radioSummary(event)),
  );
}

function payloadSummary(event) {
  switch (event.event) {
    case 'up':
      if (event.object !== undefined && event.object !== null) {
        return truncate(JSON.stringify(event.object));
      }
      if (typeof event.data === 'string') {
        return event.data === '' ? '(empty)' : `0x${base64ToHex(event.data)}`;
      }
      if (typeof event.frmPayload === 'string') {
        return `encrypted, ${base64Length(event.frmPayload)} bytes`;
      }
      return '';
    case 'join':
      return typeof event.devAddr === 'string' ? `DevAddr ${event.devAddr}` : '';
    case 'txack':
      return [event.status, event.window].filter((part) => typeof part === 'string').join(', ');
    case 'ack':
      return event.acknowledged === true ? 'acknowledged' : 'not acknowledged';
    case 'log':
      return [event.level, event.code, event.description]
        .filter((part) => typeof part === 'string' && part !== '')
        .join(': ');
    default: {
      const { id: _id, event: _type, time: _time, deviceInfo: _device, ...rest } = event;
      return truncate(JSON.stringify(rest));
    }
  }
}

function radioSummary(event) {
  const heard = Array.isArray(event.rxInfo) ? event.rxInfo : [];
  const first = heard[0];
  if (first === undefined) return typeof event.gatewayId === 'string' ? event.gatewayId : '';
  const more = heard.length > 1 ? ` +${heard.length - 1}` : '';
  return `${first.gatewayId} (${first.rssi} dBm, SNR ${first.snr} dB)${more}`;
}

export async function gatewaysView() {
  const list = await pagedTable({
    name: 'gateways',
    columns: ['Gateway', 'Gateway ID', 'Last seen'],
    empty: 'No gateway that you may see.',
    fetchPage: async (cursor) => {
      const answer = await api('GET', withQuery('/gateways', { limit: PAGE_SIZE, cursor }));
      return { items: answer.gateways, nextCursor: answer.nextCursor };
    },
    row: (gateway) =>
      h(
        'tr',
        { 'data-gateway-id': gateway.gatewayId },
        h(
          'td',
          {},
          gateway.name,
          gateway.shared === true ? h('span', { class: 'muted' }, ' (shared)') : null,
        ),
        h('td', { class: 'mono' }, gateway.gatewayId),
        h('td', { 'data-field': 'lastSeen' }, timeAgo(gateway.lastSeenAt)),
      ),
  });
  return h('section', {}, h('h1', {}, 'Gateways'), list);
}
