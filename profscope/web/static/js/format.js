// Number, unit and colour helpers. Pure functions, no DOM.

const NUMBER = new Intl.NumberFormat("en-US");
const TIME_NS = { nanoseconds: 1, microseconds: 1e3, milliseconds: 1e6, seconds: 1e9 };
const TIME_STEPS = [[3600e9, "h"], [60e9, "min"], [1e9, "s"], [1e6, "ms"], [1e3, "µs"], [1, "ns"]];
const BYTE_STEPS = [[2 ** 40, "TiB"], [2 ** 30, "GiB"], [2 ** 20, "MiB"], [2 ** 10, "KiB"], [1, "B"]];

function scaled(v, steps) {
  const a = Math.abs(v);
  for (const [size, name] of steps) {
    if (a >= size || size === 1) {
      const x = v / size;
      const digits = Math.abs(x) >= 100 || Number.isInteger(x) ? 0 : Math.abs(x) >= 10 ? 1 : 2;
      return `${x.toFixed(digits)} ${name}`;
    }
  }
  return String(v);
}

/** A value in the profile's unit, humanised: "1.76 s", "12.0 MiB", "1,234". */
export function formatValue(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (unit in TIME_NS) return scaled(v * TIME_NS[unit], TIME_STEPS);
  if (unit === "bytes") return scaled(v, BYTE_STEPS);
  const s = NUMBER.format(v);
  return unit && unit !== "count" ? `${s} ${unit}` : s;
}

/** `part` as a percentage of `whole`: "12.34%". */
export function percent(part, whole) {
  if (!whole) return "–";
  return `${((100 * part) / whole).toFixed(2)}%`;
}

/** A signed percentage: "+12.3%". */
export function signedPercent(x, digits = 1) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "new";
  return `${x > 0 ? "+" : ""}${x.toFixed(digits)}%`;
}

/** Regex-escape a literal string. */
export function escapeRegex(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The search box text as a RegExp: a valid regex as is, anything else as a literal. */
export function searchRegex(text) {
  if (!text) return null;
  try {
    return new RegExp(text);
  } catch {
    return new RegExp(escapeRegex(text));
  }
}

/**
 * The "package" a frame name belongs to, used to colour related frames alike:
 * Go `github.com/x/y.(*T).M` -> `github.com/x/y`, Java `com.a.B.m` -> `com.a`,
 * C++/Rust `std::vec::Vec::push` -> `std`, Python `lib/x.py:12 - f` -> `lib/x.py`.
 */
export function packageOf(name) {
  let s = name.replace(/^\[|\]$/g, "");
  const py = s.match(/^(.*?\.py)\b/);
  if (py) return py[1];
  const colons = s.indexOf("::");
  if (colons > 0) return s.slice(0, colons);
  const slash = s.lastIndexOf("/", s.indexOf("(") >= 0 ? s.indexOf("(") : s.length);
  const head = s.slice(0, slash + 1);
  s = s.slice(slash + 1);
  const parts = s.split(".");
  if (parts.length > 2 && /^[a-z]/.test(parts[0]) && /^[A-Z]/.test(parts[parts.length - 2])) {
    return head + parts.slice(0, -2).join(".");   // Java-like: package.Class.method
  }
  return head + parts[0];
}

function hash32(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

const SPECIAL = new Set(["total", "other"]);

/** Fill colour of a flame graph frame: a stable pastel hue per package. */
export function frameColour(name) {
  if (SPECIAL.has(name)) return "hsl(220, 8%, 78%)";
  const h = hash32(packageOf(name));
  const hue = h % 360;
  const light = 68 + ((h >>> 9) % 10);
  return `hsl(${hue}, 62%, ${light}%)`;
}

/**
 * Diff colour from the relative change of a frame's share: red grows with regressions,
 * green with improvements, neutral grey below 1%.
 */
export function diffColour(baseShare, headShare) {
  if (baseShare === 0 && headShare === 0) return "hsl(220, 8%, 82%)";
  const rel = baseShare === 0 ? 1 : (headShare - baseShare) / baseShare;
  if (Math.abs(rel) < 0.01) return "hsl(220, 8%, 82%)";
  const strength = Math.min(1, Math.abs(rel));     // 100% change or more = full colour
  const sat = 35 + Math.round(50 * strength);
  const light = 82 - Math.round(28 * strength);
  return rel > 0 ? `hsl(0, ${sat}%, ${light}%)` : `hsl(130, ${sat}%, ${light}%)`;
}
