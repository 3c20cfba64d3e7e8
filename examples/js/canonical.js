// Crossbill's canonical encoding (docs/adr/0001-canonical-encoding.md): UTF-8 JSON, object keys
// sorted by Unicode code point, no whitespace, integers only (signed 64-bit), byte strings as
// lowercase hexadecimal, strings without control characters.
//
// Values are plain JavaScript data: objects, arrays, strings, booleans, null, and integers as
// Numbers (safe integers only: |n| <= 2^53 - 1) or BigInts (the whole signed 64-bit range).
// Byte fields are given already as lowercase hex strings (see bytes.js `hex`).

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
// (String.prototype.isWellFormed says the same from Node 20 on; Debian 12 ships Node 18)
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export class EncodeError extends Error {}

// Compares two strings by Unicode code point (JavaScript's `<` compares UTF-16 code units,
// which orders characters above U+FFFF before U+E000..U+FFFF).
export function compareCodePoints(a, b) {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function encodeValue(value, path) {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      if (value < INT64_MIN || value > INT64_MAX) {
        throw new EncodeError(`${path}: integer ${value} outside the signed 64-bit range`);
      }
      return value.toString();
    case "number":
      if (!Number.isInteger(value)) {
        throw new EncodeError(`${path}: ${value} is not an integer (floats are refused)`);
      }
      if (!Number.isSafeInteger(value)) {
        throw new EncodeError(`${path}: ${value} is beyond 2^53 - 1: pass it as a BigInt`);
      }
      if (Object.is(value, -0)) throw new EncodeError(`${path}: -0 is refused`);
      return String(value);
    case "string":
      if (CONTROL_CHARS.test(value)) {
        throw new EncodeError(`${path}: control characters are not allowed in strings`);
      }
      if (LONE_SURROGATE.test(value)) {
        throw new EncodeError(`${path}: a lone UTF-16 surrogate is not valid UTF-8`);
      }
      // Without control characters and lone surrogates, JSON.stringify escapes exactly what
      // the canonical form escapes: the quote and the backslash.
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) {
        return `[${value.map((v, i) => encodeValue(v, `${path}[${i}]`)).join(",")}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new EncodeError(`${path}: a ${proto.constructor.name} is not plain JSON data`);
      }
      const keys = Object.keys(value).sort(compareCodePoints);
      const members = keys.map((k) => {
        if (value[k] === undefined) throw new EncodeError(`${path}.${k}: undefined`);
        return `${encodeValue(k, path)}:${encodeValue(value[k], path ? `${path}.${k}` : k)}`;
      });
      return `{${members.join(",")}}`;
    }
    default:
      throw new EncodeError(`${path}: a ${typeof value} is not JSON data`);
  }
}

// The canonical bytes of plain JSON data (protocol/codec.py `dumps_canonical`).
export function dumpsCanonical(value) {
  return Buffer.from(encodeValue(value, ""), "utf8");
}

// The canonical bytes of a top-level object with its version key "v": 1 (protocol/codec.py
// `encode`): what is hashed and signed.
export const CODEC_VERSION = 1;
export function encode(object) {
  if ("v" in object) throw new EncodeError("the object already has a version key 'v'");
  return dumpsCanonical({ ...object, v: CODEC_VERSION });
}
