// biome-ignore-all lint: a vendor-style codec, written the way device makers write them
/**
 * IO-8A analog input module (fictional). ChirpStack v4 codec.
 *
 * Uplink fPort 10: channel mask(1), then per channel present (bit i = channel i), 2 bytes BE:
 *   the raw reading in µA (current loop) or mV (voltage), by the device variable
 *   `ch<i>_type` = "current" (default) or "voltage".
 *   Device variables `ch<i>_min` / `ch<i>_max` map 4-20 mA or 0-10 V to engineering units.
 * Uplink fPort 11: digital inputs: state mask(1), then 8 x pulse counters, 3 bytes BE each.
 * Downlink: { outputs: [{ channel, on }] } -> 0x20, mask of outputs to change, mask of states.
 */

function channelConfig(variables, channel) {
  var prefix = 'ch' + channel + '_';
  var type = variables[prefix + 'type'] || 'current';
  var min = parseFloat(variables[prefix + 'min']);
  var max = parseFloat(variables[prefix + 'max']);
  return {
    type: type,
    scaled: !isNaN(min) && !isNaN(max),
    min: min,
    max: max,
  };
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}

function decodeAnalog(bytes, variables) {
  var mask = bytes[0];
  var expected = 1;
  for (var c = 0; c < 8; c++) if (mask & (1 << c)) expected += 2;
  if (bytes.length !== expected) {
    throw new Error(
      'expected ' +
        expected +
        ' bytes for channel mask 0x' +
        mask.toString(16) +
        ', got ' +
        bytes.length,
    );
  }
  var channels = [];
  var offset = 1;
  for (var ch = 0; ch < 8; ch++) {
    if (!(mask & (1 << ch))) continue;
    var raw = (bytes[offset] << 8) | bytes[offset + 1];
    offset += 2;
    var cfg = channelConfig(variables, ch);
    var reading = { channel: ch, type: cfg.type };
    var fraction;
    if (cfg.type === 'voltage') {
      reading.volts = raw / 1000;
      fraction = reading.volts / 10;
    } else {
      reading.milliamps = raw / 1000;
      reading.fault = reading.milliamps < 3.6 || reading.milliamps > 21;
      fraction = (reading.milliamps - 4) / 16;
    }
    if (cfg.scaled) {
      reading.value = round3(cfg.min + fraction * (cfg.max - cfg.min));
    }
    channels.push(reading);
  }
  return { channels: channels };
}

function decodeDigital(bytes) {
  if (bytes.length !== 25) {
    throw new Error('digital frame must be 25 bytes');
  }
  var inputs = [];
  for (var i = 0; i < 8; i++) {
    var o = 1 + i * 3;
    inputs.push({
      input: i,
      active: ((bytes[0] >> i) & 1) === 1,
      pulses: (bytes[o] << 16) | (bytes[o + 1] << 8) | bytes[o + 2],
    });
  }
  return { inputs: inputs };
}

function decodeUplink(input) {
  var variables = input.variables || {};
  if (input.fPort === 10) {
    return { data: decodeAnalog(input.bytes, variables) };
  }
  if (input.fPort === 11) {
    return { data: decodeDigital(input.bytes) };
  }
  throw new Error('unsupported fPort ' + input.fPort);
}

function encodeDownlink(input) {
  var outputs = input.data.outputs;
  if (!Array.isArray(outputs) || outputs.length === 0) {
    throw new Error('data.outputs must be a non-empty array');
  }
  var change = 0;
  var state = 0;
  outputs.forEach(function (o) {
    if (o.channel < 0 || o.channel > 7) {
      throw new Error('output channel out of range: ' + o.channel);
    }
    change |= 1 << o.channel;
    if (o.on) state |= 1 << o.channel;
  });
  return { bytes: [0x20, change, state] };
}
