/**
 * Python's `repr()` of JSON values, so that the messages the SDK writes (dead-letter
 * reasons, definition errors) are the very ones the Python SDK writes.
 */

/** What Python's `str.isprintable()` refuses: other, separators (but the space). */
const NOT_PRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;

function escape(code: number): string {
  const hex = code.toString(16);
  if (code < 0x100) return `\\x${hex.padStart(2, "0")}`;
  if (code < 0x10000) return `\\u${hex.padStart(4, "0")}`;
  return `\\U${hex.padStart(8, "0")}`;
}

/** `repr(value)` of a string in Python: single quotes unless the text holds one and no double. */
export function reprString(value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  let out = quote;
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (char === "\\") out += "\\\\";
    else if (char === quote) out += `\\${quote}`;
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (char !== " " && NOT_PRINTABLE.test(char)) out += escape(code);
    else out += char;
  }
  return out + quote;
}

/** `repr()` of a decoded JSON value (`None`, `True`, `[1, 'a']`, `{'k': 1}`). */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "string") return reprString(value);
  if (typeof value === "number") return pyFloatOrInt(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(", ")}]`;
  if (typeof value === "object") {
    const items = Object.entries(value as Record<string, unknown>).map(
      ([k, v]) => `${reprString(k)}: ${pyRepr(v)}`,
    );
    return `{${items.join(", ")}}`;
  }
  return String(value);
}

/**
 * Whether Python holds a JSON number as an int. JSON.parse cannot tell `1.0` from `1`: an
 * integral value is taken for an int, except from 1e16 on, where Python's own writers
 * (`json.dumps`, msgspec) only write floats, in exponent form.
 */
export function isPythonInt(value: number): boolean {
  return Number.isInteger(value) && Math.abs(value) < 1e16;
}

/**
 * How Python prints a number decoded from JSON: an integral value as an int, any other as
 * `repr(float)` (shortest round-trip digits; exponent form below 1e-4 and from 1e16).
 */
export function pyFloatOrInt(value: number): string {
  if (!Number.isFinite(value)) return value > 0 ? "inf" : value < 0 ? "-inf" : "nan";
  return isPythonInt(value) ? String(value) : pyFloat(value);
}

/** Python's `repr(float)`. */
export function pyFloat(value: number): string {
  if (!Number.isFinite(value)) return value > 0 ? "inf" : value < 0 ? "-inf" : "nan";
  const [mantissa = "0", exp = "0"] = value.toExponential().split("e");
  const exponent = Number(exp);
  const negative = mantissa.startsWith("-");
  const digits = mantissa.replace("-", "").replace(".", "");
  const sign = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    // fixed notation, with at least one digit after the point
    let text: string;
    if (exponent < 0) {
      text = `0.${"0".repeat(-exponent - 1)}${digits}`;
    } else if (digits.length > exponent + 1) {
      text = `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
    } else {
      text = `${digits}${"0".repeat(exponent + 1 - digits.length)}.0`;
    }
    return sign + text;
  }
  const rest = digits.slice(1);
  const expText = `${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
  return `${sign}${digits[0]}${rest ? `.${rest}` : ""}e${expText}`;
}
