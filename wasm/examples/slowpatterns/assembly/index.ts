// slowpatterns - known-slow work in hot paths, recognised by function name.
//
// Each category (regex compilation, JSON parsing, ...) has name fragments. A node matches a
// category when its name contains one of the fragments at a word start (the name's start, or
// after a byte other than [A-Za-z0-9_]: "java/util/regex/Pattern.compile" matches
// "Pattern.compile", "more.compile" does not match "re.compile"). The category's value is the
// sum of the *total* (inclusive) value of matching nodes that have no matching ancestor of the
// same category (so recursion and nested helpers count once). A category whose share of the root
// total is at least threshold_pct % becomes a finding ("critical" from critical_pct up).
// Config: threshold_pct (2), critical_pct (15).
//
// AssemblyScript with the stub runtime (a bump allocator); names are compared as raw UTF-8
// bytes against ASCII fragments, and the JSON output is written byte by byte.

@external("profscope", "log")
declare function plog(level: i32, ptr: usize, len: i32): void;

const N_CATEGORIES = 8;
const CATEGORY_IDS: StaticArray<string> = [
  "regex_compile", "json_decode", "json_encode", "reflection",
  "stack_capture", "string_format", "compression", "gc_alloc",
];
const CATEGORY_TITLES: StaticArray<string> = [
  "regular expression compilation", "JSON parsing", "JSON encoding", "reflection",
  "stack trace capture", "string formatting", "compression", "allocation and garbage collection",
];
const CATEGORY_HINTS: StaticArray<string> = [
  "compile each pattern once, outside the hot path, and reuse it",
  "parse once and cache, stream large documents, or use a faster decoder",
  "encode once and cache, or use a faster encoder",
  "cache reflective lookups or generate code instead of reflecting per call",
  "capture stacks only when the result is used (e.g. on error paths)",
  "avoid formatting strings that are not used; build them lazily",
  "compress less often, with a faster level, or off the request path",
  "reduce allocations in hot loops (reuse buffers, preallocate)",
];
// fragment, category index
const FRAGMENTS: StaticArray<string> = [
  "re.compile", "re._compile", "sre_compile.", "regexp.Compile", "regexp.MustCompile",
  "regexp/syntax.Parse", "Pattern.compile", "std::basic_regex", "Regex::new",
  "json.load", "json.decoder.", "encoding/json.Unmarshal", "encoding/json.(*decodeState)",
  "encoding/json.(*Decoder)", "JSON.parse", "ObjectMapper.readValue", "ObjectMapper.readTree",
  "serde_json::de::", "orjson.loads", "ujson.loads",
  "json.dump", "json.encoder.", "encoding/json.Marshal", "encoding/json.(*encodeState)",
  "encoding/json.(*Encoder)", "JSON.stringify", "ObjectMapper.writeValue", "serde_json::ser::",
  "reflect.Value.Call", "reflect.Value.MethodByName", "reflect/Method.invoke",
  "reflect.Method.invoke",
  "runtime.Callers", "runtime.Stack", "Throwable.fillInStackTrace", "traceback.extract_stack",
  "traceback.format_stack", "inspect.stack",
  "fmt.Sprintf", "fmt.Fprintf", "String.format",
  "compress/flate.", "compress/gzip.", "compress/zlib.", "zlib.compress", "zlib.decompress",
  "java/util/zip/", "java.util.zip.",
  "runtime.mallocgc", "runtime.gcBgMarkWorker", "runtime.gcDrain", "runtime.scanobject",
];
const FRAGMENT_CATEGORY: StaticArray<i32> = [
  0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  2, 2, 2, 2, 2, 2, 2, 2,
  3, 3, 3, 3,
  4, 4, 4, 4, 4, 4,
  5, 5, 5,
  6, 6, 6, 6, 6, 6, 6,
  7, 7, 7, 7,
];

export function profscope_abi_v1(): void {}

export function psp_alloc(size: i32): i32 {
  return <i32>heap.alloc(<usize>size);
}

// ------------------------------------------------------------------ output
let outBuf: usize = 0;
let outLen: u32 = 0;
let outCap: u32 = 0;

function putb(b: u32): void {
  if (outLen >= outCap) unreachable();
  store<u8>(outBuf + outLen, <u8>b);
  outLen++;
}

function putAscii(s: string): void {
  for (let i = 0; i < s.length; i++) putb(<u32>s.charCodeAt(i));
}

function putEscaped(p: usize, n: u32): void {
  for (let i: u32 = 0; i < n; i++) {
    const c = <u32>load<u8>(p + i);
    if (c == 34 || c == 92) { putb(92); putb(c); }
    else if (c < 32) {
      putAscii("\\u00");
      putb(<u32>"0123456789abcdef".charCodeAt(c >> 4));
      putb(<u32>"0123456789abcdef".charCodeAt(c & 15));
    } else putb(c);
  }
}

function putI64(x: i64): void {
  if (x < 0) { putb(45); x = -x; }
  let div: u64 = 1;
  const u = <u64>x;
  while (div <= u / 10) div *= 10;
  while (div > 0) { putb(<u32>(48 + (u / div) % 10)); div /= 10; }
}

function putFixed(x: f64, decimals: i32): void {
  let scale: u64 = 1;
  for (let i = 0; i < decimals; i++) scale *= 10;
  if (x < 0) { putb(45); x = -x; }
  const units = <u64>(x * <f64>scale + 0.5);
  putI64(<i64>(units / scale));
  if (decimals > 0) {
    putb(46);
    let f = units % scale;
    let d = scale / 10;
    while (d > 0) { putb(<u32>(48 + (f / d) % 10)); d /= 10; }
  }
}

// ------------------------------------------------------------------ metadata
let metaPtr: usize = 0;
let metaLen: u32 = 0;

function isSpace(c: u32): bool { return c == 32 || c == 9 || c == 10 || c == 13; }

function metaNumber(key: string, dflt: f64): f64 {
  const k = <u32>key.length;
  for (let i: u32 = 0; i + k + 2 <= metaLen; i++) {
    if (load<u8>(metaPtr + i) != 34 || load<u8>(metaPtr + i + k + 1) != 34) continue;
    let j: u32 = 0;
    while (j < k && <u32>load<u8>(metaPtr + i + 1 + j) == <u32>key.charCodeAt(j)) j++;
    if (j < k) continue;
    let p = i + k + 2;
    while (p < metaLen && isSpace(load<u8>(metaPtr + p))) p++;
    if (p >= metaLen || load<u8>(metaPtr + p) != 58) continue;
    p++;
    while (p < metaLen && isSpace(load<u8>(metaPtr + p))) p++;
    let neg = false;
    if (p < metaLen && load<u8>(metaPtr + p) == 45) { neg = true; p++; }
    let x: f64 = 0, digits = 0;
    while (p < metaLen && load<u8>(metaPtr + p) >= 48 && load<u8>(metaPtr + p) <= 57) {
      x = x * 10 + <f64>(load<u8>(metaPtr + p) - 48); p++; digits++;
    }
    if (p < metaLen && load<u8>(metaPtr + p) == 46) {
      p++;
      let scale: f64 = 1;
      while (p < metaLen && load<u8>(metaPtr + p) >= 48 && load<u8>(metaPtr + p) <= 57) {
        scale /= 10; x += <f64>(load<u8>(metaPtr + p) - 48) * scale; p++; digits++;
      }
    }
    if (digits == 0) return dflt;
    return neg ? -x : x;
  }
  return dflt;
}

// ------------------------------------------------------------------ matching
// fragments bucketed by first byte: bucketStart[b] .. bucketStart[b + 1] index bucketItems
const bucketStart = new StaticArray<i32>(257);
const bucketItems = new StaticArray<i32>(FRAGMENTS.length);

function buildBuckets(): void {
  for (let f = 0; f < FRAGMENTS.length; f++) bucketStart[FRAGMENTS[f].charCodeAt(0) + 1]++;
  for (let b = 0; b < 256; b++) bucketStart[b + 1] += bucketStart[b];
  const fill = new StaticArray<i32>(256);
  for (let f = 0; f < FRAGMENTS.length; f++) {
    const b = FRAGMENTS[f].charCodeAt(0);
    bucketItems[bucketStart[b] + fill[b]] = f;
    fill[b]++;
  }
}

function fragmentAt(p: usize, rest: u32, frag: string): bool {
  const n = <u32>frag.length;
  if (n > rest) return false;
  const f = changetype<usize>(frag);           // UTF-16 code units; fragments are ASCII
  for (let i: u32 = 0; i < n; i++) {
    if (<u32>load<u8>(p + i) != <u32>load<u16>(f + (<usize>i << 1))) return false;
  }
  return true;
}

function isWordByte(b: i32): bool {
  return (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95;
}

// bit mask of the categories whose fragments occur in name bytes p[0..n), each fragment
// starting at the beginning of the name or right after a byte that is not [A-Za-z0-9_]
function nameMask(p: usize, n: u32): u32 {
  let mask: u32 = 0;
  let prevWord = false;
  for (let i: u32 = 0; i < n; i++) {
    const b = <i32>load<u8>(p + i);
    const atStart = !prevWord;
    prevWord = isWordByte(b);
    if (!atStart) continue;
    const end = unchecked(bucketStart[b + 1]);
    for (let q = unchecked(bucketStart[b]); q < end; q++) {
      const f = unchecked(bucketItems[q]);
      const bit: u32 = 1 << unchecked(FRAGMENT_CATEGORY[f]);
      if ((mask & bit) == 0 && fragmentAt(p + i, n - i, unchecked(FRAGMENTS[f]))) mask |= bit;
    }
  }
  return mask;
}

// ------------------------------------------------------------------ analysis
export function psp_analyze(ptr: i32, len: i32): i64 {
  const base = <usize>ptr;
  if (len < 64 || load<u32>(base) != 0x31465350 || load<u32>(base + 60) != <u32>len) {
    return errorOut("input is not PSF1");
  }
  const n = load<u32>(base + 12);
  const m = load<u32>(base + 16);
  const parent = base + load<u32>(base + 20);
  const name = base + load<u32>(base + 24);
  const total = base + load<u32>(base + 32);
  const stroff = base + load<u32>(base + 44);
  const strdata = base + load<u32>(base + 48);
  metaPtr = base + load<u32>(base + 52);
  metaLen = load<u32>(base + 56);
  const threshold = metaNumber("threshold_pct", 2.0);
  const critical = metaNumber("critical_pct", 15.0);

  buildBuckets();
  const masks = heap.alloc(<usize>(m + 1) << 2);
  for (let j: u32 = 0; j < m; j++) {
    const s0 = load<u32>(stroff + (j << 2));
    const s1 = load<u32>(stroff + ((j + 1) << 2));
    store<u32>(masks + (j << 2), nameMask(strdata + s0, s1 - s0));
  }
  const sums = new StaticArray<i64>(N_CATEGORIES);
  const best = new StaticArray<i32>(N_CATEGORIES);     // node with the largest total per category
  const anc = heap.alloc(<usize>(n + 1) << 2);          // categories matched by an ancestor
  if (n > 0) store<u32>(anc, 0);
  for (let i: u32 = 1; i < n; i++) {
    const p = load<u32>(parent + (i << 2));
    const pm = p == 0 ? 0 : load<u32>(masks + (load<u32>(name + (p << 2)) << 2));
    const a = load<u32>(anc + (p << 2)) | pm;
    store<u32>(anc + (i << 2), a);
    const fresh = load<u32>(masks + (load<u32>(name + (i << 2)) << 2)) & ~a;
    if (fresh == 0) continue;
    const t = load<i64>(total + (<usize>i << 3));
    for (let c = 0; c < N_CATEGORIES; c++) {
      if ((fresh & (1 << c)) == 0) continue;
      sums[c] += t;
      if (best[c] == 0 || t > load<i64>(total + (<usize>best[c] << 3))) best[c] = i;
    }
  }
  const root = n > 0 ? load<i64>(total) : 0;

  // output: bound its size first (names escaped at most 6x, plus fixed text)
  let cap: u32 = 64;
  for (let c = 0; c < N_CATEGORIES; c++) {
    if (best[c] == 0) continue;
    const nm = load<u32>(name + (<usize>best[c] << 2));
    cap += 640 + 12 * (load<u32>(stroff + ((nm + 1) << 2)) - load<u32>(stroff + (nm << 2)));
  }
  outBuf = heap.alloc(cap);
  outCap = cap;
  outLen = 0;
  putAscii("{\"findings\":[");
  let count = 0;
  for (let c = 0; c < N_CATEGORIES && root > 0; c++) {
    if (sums[c] <= 0) continue;
    const share = <f64>sums[c] / <f64>root;
    if (share * 100.0 < threshold) continue;
    const nm = load<u32>(name + (<usize>best[c] << 2));
    const s0 = load<u32>(stroff + (nm << 2));
    const nl = load<u32>(stroff + ((nm + 1) << 2)) - s0;
    if (count > 0) putb(44);
    putAscii(share * 100.0 >= critical ? "{\"severity\":\"critical\"" : "{\"severity\":\"warning\"");
    putAscii(",\"title\":\"slow pattern: ");
    putAscii(CATEGORY_TITLES[c]);
    putAscii("\",\"category\":\"");
    putAscii(CATEGORY_IDS[c]);
    putAscii("\",\"function\":\"");
    putEscaped(strdata + s0, nl);
    putAscii("\",\"value\":");
    putI64(sums[c]);
    putAscii(",\"share\":");
    putFixed(share, 6);
    putAscii(",\"message\":\"");
    putAscii(CATEGORY_TITLES[c]);
    putAscii(" takes ");
    putFixed(share * 100.0, 1);
    putAscii("% of the profile (inclusive), mostly under ");
    putEscaped(strdata + s0, nl);
    putAscii(": ");
    putAscii(CATEGORY_HINTS[c]);
    putAscii("\"}");
    count++;
  }
  putAscii("]}");
  const note = "slowpatterns: categories scanned";
  const noteBuf = String.UTF8.encode(note);
  plog(0, changetype<usize>(noteBuf), noteBuf.byteLength);
  return (<i64>outLen << 32) | <i64>outBuf;
}

function errorOut(msg: string): i64 {
  outCap = 64 + <u32>msg.length;
  outBuf = heap.alloc(outCap);
  outLen = 0;
  putAscii("{\"error\":\"");
  putAscii(msg);
  putAscii("\"}");
  return (<i64>outLen << 32) | <i64>outBuf;
}
