// Building the page without markup: every piece of data goes in as a text node or an attribute
// value, never through innerHTML, so a device named "<img onerror=…>" shows as those characters.

/**
 * An element with attributes and children: `h('a', {href: '#/gateways'}, 'Gateways')`.
 * Attributes `on<event>` with a function become listeners; null, undefined and false are left
 * out; strings and numbers among the children become text nodes.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the children of `element`. */
export function replaceChildren(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** A link inside the console (hash route), with path segments encoded. */
export function link(segments, ...children) {
  return h('a', { href: `#/${segments.map(encodeURIComponent).join('/')}` }, ...children);
}

/**
 * A timestamp as "2 min ago", with the ISO time in its title and `datetime`; "never" for null.
 * `refreshRelativeTimes` keeps the wording current.
 */
export function timeAgo(iso) {
  if (iso === null || iso === undefined) return h('span', { class: 'muted' }, 'never');
  return h('time', { datetime: iso, title: iso, 'data-relative': '' }, relative(iso));
}

export function refreshRelativeTimes(root = document) {
  for (const element of root.querySelectorAll('time[data-relative]')) {
    element.textContent = relative(element.getAttribute('datetime'));
  }
}

function relative(iso) {
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return iso;
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/** Base64 (as events carry payloads) to lower-case hex. */
export function base64ToHex(base64) {
  try {
    return Array.from(atob(base64), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  } catch {
    return '';
  }
}

/** The byte count of a base64 text. */
export function base64Length(base64) {
  try {
    return atob(base64).length;
  } catch {
    return 0;
  }
}

/** At most `max` characters, with an ellipsis when cut. */
export function truncate(text, max = 120) {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
