/**
 * JavaScript that runs inside each codec's isolate, before the codec's own source. It:
 * - removes the few built-ins a codec must not have (see below);
 * - keeps the built-ins it needs in a closure, so that a codec that replaces `JSON.stringify`
 *   or `Object.keys` at its top level cannot change how its results are checked;
 * - returns `load(source, maxOutputChars)`, which runs the codec's source, finds its functions
 *   and returns the entry points the host calls (or `{failure}` when the source throws).
 *
 * Single calls take primitives only (bytes as a latin1 string, variables as JSON text), which
 * cross into an isolate faster than copied objects; a batch takes one packed Uint8Array.
 * Every entry point returns one string: a JSON "record" `[kind, ...]` (see records.ts). Only
 * strings leave the isolate, so the host never touches an object the codec made; the host still
 * parses and checks each record as untrusted input.
 *
 * The entry points are strict-mode functions: a sloppy codec asking `decodeUplink.caller` or
 * `arguments.callee.caller` gets null, never the harness.
 */
export const SANDBOX_PRELUDE = String.raw`(function () {
  'use strict';
  const g = globalThis;
  // The context has the JavaScript built-ins only: no require, process, timers, fetch or I/O.
  // Removed as well: SharedArrayBuffer and Atomics (Atomics.wait blocks a thread), WebAssembly
  // (its memory lives outside the isolate's heap limit), WeakRef and FinalizationRegistry
  // (cleanup callbacks would run outside any call and its time limit).
  const removed = ['SharedArrayBuffer', 'Atomics', 'WebAssembly', 'FinalizationRegistry', 'WeakRef'];
  for (let i = 0; i < removed.length; i++) delete g[removed[i]];
  // Vendor files often end with "module.exports = {...}" for their own tests.
  g.module = { exports: {} };
  g.exports = g.module.exports;

  const apply = Reflect.apply;
  const keysOf = Object.keys;
  const protoOf = Object.getPrototypeOf;
  const isArray = Array.isArray;
  const arrayFrom = Array.from;
  const isView = ArrayBuffer.isView;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const toTag = Object.prototype.toString;
  const objectProto = Object.prototype;
  const DateCtor = Date;
  const StringCtor = String;
  const regexpExec = RegExp.prototype.exec;
  const stringSlice = String.prototype.slice;
  const LOCATION = /codec\.js:(\d+):(\d+)/;
  const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
  const MAX_DEPTH = 32;
  const MAX_MESSAGE = 500;

  function typeName(value) {
    if (value === null) return 'null';
    if (value === undefined) return 'undefined';
    if (isArray(value)) return 'an array';
    const type = typeof value;
    return type === 'object' ? 'an object' : 'a ' + type;
  }

  function clip(text) {
    return text.length > MAX_MESSAGE ? apply(stringSlice, text, [0, MAX_MESSAGE]) + '...' : text;
  }

  // A thrown value as one line, with the codec's line and column when the stack has them.
  function describeThrown(error) {
    try {
      const isObject = error !== null && (typeof error === 'object' || typeof error === 'function');
      const message = isObject ? error.message : undefined;
      if (typeof message !== 'string') {
        let shown;
        try {
          shown = isObject ? stringify(error) : undefined;
        } catch (_) {
          shown = undefined;
        }
        return clip('threw ' + typeName(error) + ': ' + (typeof shown === 'string' ? shown : StringCtor(error)));
      }
      const name = error.name;
      let text = typeof name === 'string' && name !== '' ? name + ': ' + message : message;
      const stack = error.stack;
      if (typeof stack === 'string') {
        const found = apply(regexpExec, LOCATION, [stack]);
        if (found !== null) text = text + ' (at codec.js:' + found[1] + ':' + found[2] + ')';
      }
      return clip(text);
    } catch (_) {
      return 'threw a value that cannot be described';
    }
  }

  function record(kind, message) {
    return '[' + kind + ',' + stringify(clip(message)) + ']';
  }

  // --- JSON check: true when the value is JSON-compatible; typed arrays become plain arrays ---
  let failPath = '';
  let failReason = '';

  function viewToArray(view) {
    if (apply(toTag, view, []) === '[object DataView]') {
      failReason = 'is a DataView; return a plain array of numbers';
      return undefined;
    }
    return arrayFrom(view);
  }

  function describeTag(tag) {
    const name = apply(stringSlice, tag, [8, -1]);
    if (name === 'Promise') return 'a Promise (codecs run synchronously: no async functions)';
    return 'a ' + name + ', which JSON cannot represent; return a plain object or array';
  }

  function keyPath(key) {
    return apply(regexpExec, IDENTIFIER, [key]) !== null ? '.' + key : '[' + stringify(key) + ']';
  }

  // True when holder[key] is JSON-compatible. Like JSON.stringify, it first replaces a value that
  // has a toJSON method (a Date, say) by what that method returns; typed arrays become arrays.
  function check(holder, key, depth) {
    let value = holder[key];
    if (typeof value === 'object' && value !== null) {
      if (isView(value)) {
        value = viewToArray(value);
        if (value === undefined) return false;
        holder[key] = value;
      } else {
        const toJSON = value.toJSON;
        if (typeof toJSON === 'function') {
          value = apply(toJSON, value, [typeof key === 'number' ? StringCtor(key) : key]);
          holder[key] = value;
        }
      }
    }
    switch (typeof value) {
      case 'string':
      case 'boolean':
      case 'undefined':
        return true;
      case 'number':
        if (value - value === 0) return true;
        failReason = 'is ' + StringCtor(value) + ', which JSON cannot represent';
        return false;
      case 'bigint':
        failReason = 'is a BigInt; convert it to a number or a string';
        return false;
      case 'function':
        failReason = 'is a function';
        return false;
      case 'symbol':
        failReason = 'is a symbol';
        return false;
    }
    if (value === null) return true;
    if (depth >= MAX_DEPTH) {
      failReason = 'is nested more than ' + MAX_DEPTH + ' levels deep (or is cyclic)';
      return false;
    }
    if (isArray(value)) {
      const length = value.length;
      for (let i = 0; i < length; i++) {
        if (!check(value, i, depth + 1)) {
          failPath = '[' + i + ']' + failPath;
          return false;
        }
      }
      return true;
    }
    const proto = protoOf(value);
    if (proto !== objectProto && proto !== null) {
      const tag = apply(toTag, value, []);
      if (tag !== '[object Object]') {
        failReason = 'is ' + describeTag(tag);
        return false;
      }
    }
    const keys = keysOf(value);
    for (let i = 0; i < keys.length; i++) {
      const name = keys[i];
      if (name === '__proto__') {
        failPath = '.__proto__';
        failReason = 'is a key Galet refuses (it would pollute prototypes downstream)';
        return false;
      }
      if (!check(value, name, depth + 1)) {
        failPath = keyPath(name) + failPath;
        return false;
      }
    }
    return true;
  }

  // The JSON of the data, or undefined with badData set to the record of why not.
  let maxOutput = 0;
  let badData = '';
  function dataJson(fname, data) {
    failPath = '';
    failReason = '';
    const holder = { '': data };
    if (!check(holder, '', 0)) {
      badData = record(3, fname + ' returned a value JSON cannot carry: data' + failPath + ' ' + failReason);
      return undefined;
    }
    let json;
    try {
      json = stringify(holder['']);
    } catch (error) {
      badData = record(3, fname + ' returned data that cannot be serialised as JSON: ' + describeThrown(error));
      return undefined;
    }
    if (typeof json !== 'string') {
      badData = record(3, fname + ' returned data that serialises to nothing');
      return undefined;
    }
    if (json.length > maxOutput) {
      badData = record(4, fname + ' returned ' + json.length + ' characters of JSON, more than the limit of ' + maxOutput);
      return undefined;
    }
    return json;
  }

  // JSON of a warnings/errors list (strings), or undefined when it is not a list.
  function stringList(value) {
    if (value === undefined || value === null) return '[]';
    if (!isArray(value)) return undefined;
    const length = value.length;
    if (length === 0) return '[]';
    const out = [];
    for (let i = 0; i < length; i++) {
      const item = value[i];
      out[i] = typeof item === 'string' ? item : StringCtor(item);
    }
    return stringify(out);
  }

  // Turns what a decoding function returned into a record.
  function finishDecode(fname, result, legacy) {
    let data = result;
    let warnings;
    let errors;
    if (!legacy) {
      if (result === null || typeof result !== 'object') {
        return record(3, fname + ' must return an object {data, warnings, errors}, got ' + typeName(result));
      }
      if (apply(toTag, result, []) === '[object Promise]') {
        return record(3, fname + ' returned a Promise: codecs run synchronously, so async functions are not supported');
      }
      data = result.data;
      warnings = result.warnings;
      errors = result.errors;
    }
    const warningsJson = stringList(warnings);
    if (warningsJson === undefined) return record(3, fname + ' returned warnings that are not an array');
    const errorsJson = stringList(errors);
    if (errorsJson === undefined) return record(3, fname + ' returned errors that are not an array');
    if (errorsJson !== '[]') return '[1,' + errorsJson + ',' + warningsJson + ']';
    if (data === undefined) {
      return record(3, legacy ? fname + ' returned nothing' : fname + ' returned no data and no errors');
    }
    const json = dataJson(fname, data);
    if (json === undefined) return badData;
    if (json.length + warningsJson.length > maxOutput) {
      return record(4, fname + ' returned more warnings than the output limit of ' + maxOutput + ' characters');
    }
    return '[0,' + json + ',' + warningsJson + ']';
  }

  function toArray(buffer, offset, length) {
    const out = [];
    for (let i = 0; i < length; i++) out[i] = buffer[offset + i];
    return out;
  }

  // Single calls get their bytes as a latin1 string: a primitive crosses into the isolate
  // faster than a copied Uint8Array.
  const charCodeAt = String.prototype.charCodeAt;
  function latin1ToArray(text) {
    const out = [];
    const length = text.length;
    for (let i = 0; i < length; i++) out[i] = apply(charCodeAt, text, [i]);
    return out;
  }

  // The codec's source runs through an indirect eval called from here, so that whatever its
  // top-level code throws is caught and described inside the isolate, under the time cap (an
  // exception that reached isolated-vm would have its stack formatted outside any time limit,
  // and Error.prepareStackTrace is the codec's to set). An eval keeps let/const/class
  // declarations in its own scope: the trailer makes the eval's completion value the list of
  // the codec's functions, looked up from inside that scope.
  const indirectEval = eval;
  const NAMES = ['decodeUplink', 'Decoder', 'Decode', 'encodeDownlink', 'Encoder', 'Encode', 'decodeDownlink', 'normalizeUplink'];
  let trailer = '\n;[';
  for (let i = 0; i < NAMES.length; i++) {
    trailer = trailer + (i === 0 ? '' : ',') + "(typeof " + NAMES[i] + " === 'function' ? " + NAMES[i] + ' : undefined)';
  }
  trailer = trailer + ']\n//# sourceURL=codec.js\n';

  return function load(source, maxOutputChars) {
    maxOutput = maxOutputChars;
    try {
      return setUp(indirectEval(source + trailer));
    } catch (error) {
      return { failure: record(2, describeThrown(error)) };
    }
  };

  function setUp(found) {
    const m = g.module;
    const exported = m !== null && typeof m === 'object' && m.exports !== null && typeof m.exports === 'object' ? m.exports : undefined;
    const fns = {};
    for (let i = 0; i < NAMES.length; i++) {
      const name = NAMES[i];
      const local = found[i];
      fns[name] = typeof local === 'function'
        ? local
        : exported !== undefined && typeof exported[name] === 'function' ? exported[name] : undefined;
    }
    const uplinkDecoder = fns.decodeUplink !== undefined ? 'decodeUplink' : fns.Decoder !== undefined ? 'Decoder' : fns.Decode !== undefined ? 'Decode' : null;
    const downlinkEncoder = fns.encodeDownlink !== undefined ? 'encodeDownlink' : fns.Encoder !== undefined ? 'Encoder' : fns.Encode !== undefined ? 'Encode' : null;
    const downlinkDecoder = fns.decodeDownlink !== undefined ? 'decodeDownlink' : null;
    const uplinkNormalizer = fns.normalizeUplink !== undefined ? 'normalizeUplink' : null;
    const decodeFn = uplinkDecoder === null ? undefined : fns[uplinkDecoder];
    const encodeFn = downlinkEncoder === null ? undefined : fns[downlinkEncoder];
    const downlinkFn = fns.decodeDownlink;
    const normalizeFn = fns.normalizeUplink;

    function decodeUplinkBytes(bytes, fPort, recvMs, variables) {
      if (decodeFn === undefined) return record(5, 'the codec defines no decodeUplink, Decoder or Decode function');
      const vars = variables === undefined ? {} : variables;
      let result;
      try {
        if (uplinkDecoder === 'decodeUplink') {
          result = apply(decodeFn, undefined, [{ bytes: bytes, fPort: fPort, recvTime: new DateCtor(recvMs), variables: vars }]);
        } else if (uplinkDecoder === 'Decoder') {
          result = apply(decodeFn, undefined, [bytes, fPort]);
        } else {
          result = apply(decodeFn, undefined, [fPort, bytes, vars]);
        }
        return finishDecode(uplinkDecoder, result, uplinkDecoder !== 'decodeUplink');
      } catch (error) {
        return record(2, describeThrown(error));
      }
    }

    return {
      failure: '',
      signatures: stringify({ uplinkDecoder, downlinkEncoder, downlinkDecoder, uplinkNormalizer }),

      decodeUplink: function (latin1, fPort, recvMs, variablesText) {
        let variables;
        try {
          variables = variablesText === undefined ? undefined : parse(variablesText);
        } catch (error) {
          return record(2, describeThrown(error));
        }
        return decodeUplinkBytes(latin1ToArray(latin1), fPort, recvMs, variables);
      },

      // Frames packed into one buffer: lengths[i] bytes each, in order.
      decodeUplinkMany: function (buffer, lengths, fPorts, recvMs, variablesList) {
        let out = '[';
        let offset = 0;
        const count = lengths.length;
        for (let i = 0; i < count; i++) {
          const length = lengths[i];
          const variables = variablesList === undefined ? undefined : variablesList[i];
          const bytes = toArray(buffer, offset, length);
          out = out + (i === 0 ? '' : ',') + decodeUplinkBytes(bytes, fPorts[i], recvMs[i], variables === null ? undefined : variables);
          offset += length;
        }
        return out + ']';
      },

      decodeDownlink: function (latin1, fPort) {
        if (downlinkFn === undefined) return record(5, 'the codec defines no decodeDownlink function');
        try {
          const result = apply(downlinkFn, undefined, [{ bytes: latin1ToArray(latin1), fPort: fPort }]);
          return finishDecode('decodeDownlink', result, false);
        } catch (error) {
          return record(2, describeThrown(error));
        }
      },

      normalizeUplink: function (dataText) {
        if (normalizeFn === undefined) return record(5, 'the codec defines no normalizeUplink function');
        try {
          const result = apply(normalizeFn, undefined, [{ data: parse(dataText) }]);
          return finishDecode('normalizeUplink', result, false);
        } catch (error) {
          return record(2, describeThrown(error));
        }
      },

      encodeDownlink: function (dataText, fPort, variablesText) {
        if (encodeFn === undefined) return record(5, 'the codec defines no encodeDownlink, Encoder or Encode function');
        try {
          const data = parse(dataText);
          const vars = variablesText === undefined ? {} : parse(variablesText);
          const port = fPort === null ? undefined : fPort;
          let result;
          let bytes = undefined;
          let outPort = undefined;
          let warnings = undefined;
          let errors = undefined;
          if (downlinkEncoder === 'encodeDownlink') {
            result = apply(encodeFn, undefined, [{ data: data, fPort: port, variables: vars }]);
            if (result === null || typeof result !== 'object') {
              return record(3, 'encodeDownlink must return an object {bytes, fPort, warnings, errors}, got ' + typeName(result));
            }
            if (apply(toTag, result, []) === '[object Promise]') {
              return record(3, 'encodeDownlink returned a Promise: codecs run synchronously, so async functions are not supported');
            }
            bytes = result.bytes;
            outPort = result.fPort;
            warnings = result.warnings;
            errors = result.errors;
          } else if (downlinkEncoder === 'Encoder') {
            bytes = apply(encodeFn, undefined, [data, port]);
          } else {
            bytes = apply(encodeFn, undefined, [port, data, vars]);
          }
          const fname = downlinkEncoder;
          const warningsJson = stringList(warnings);
          if (warningsJson === undefined) return record(3, fname + ' returned warnings that are not an array');
          const errorsJson = stringList(errors);
          if (errorsJson === undefined) return record(3, fname + ' returned errors that are not an array');
          if (errorsJson !== '[]') return '[1,' + errorsJson + ',' + warningsJson + ']';
          if (bytes === null || typeof bytes !== 'object' || !(isArray(bytes) || (isView(bytes) && apply(toTag, bytes, []) !== '[object DataView]'))) {
            return record(3, fname + ' must return bytes as an array of numbers 0-255, got ' + typeName(bytes));
          }
          const length = bytes.length;
          if (length > maxOutput) return record(4, fname + ' returned ' + length + ' bytes, more than the limit of ' + maxOutput);
          const out = [];
          for (let i = 0; i < length; i++) {
            const b = bytes[i];
            if (typeof b !== 'number' || b !== (b & 255)) {
              return record(3, fname + ' returned bytes[' + i + '] = ' + clip(StringCtor(b)) + ', not an integer 0-255');
            }
            out[i] = b;
          }
          if (outPort !== undefined && outPort !== null && (typeof outPort !== 'number' || outPort !== (outPort & 255))) {
            return record(3, fname + ' returned fPort ' + clip(StringCtor(outPort)) + ', not an integer 0-255');
          }
          return '[0,' + stringify(out) + ',' + (outPort === undefined || outPort === null ? 'null' : StringCtor(outPort)) + ',' + warningsJson + ']';
        } catch (error) {
          return record(2, describeThrown(error));
        }
      },
    };
  }
})()`;
