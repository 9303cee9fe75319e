// The public surface of the protocol core: pure functions and types, no I/O.
// The rest of Galet imports from here rather than from individual files.
export * from './airtime.js';
export * from './bytes.js';
export * from './cflist.js';
export * from './crypto/aes.js';
export * from './crypto/constant-time.js';
export * from './crypto/data-mic.js';
export * from './crypto/frm-payload.js';
export * from './crypto/join.js';
export * from './crypto/key-wrap.js';
export * from './crypto/session-keys.js';
export * from './data-frame.js';
export * from './describe-frame.js';
export * from './errors.js';
export * from './fcnt.js';
export * from './fctrl.js';
export * from './join-accept.js';
export * from './mac-commands.js';
export * from './mhdr.js';
export * from './phy-payload.js';
export * from './regions/index.js';
export * from './rejoin-request.js';
