// ABI v1 (docs/wasm-abi.md) in AssemblyScript: upper-case the "status" field of each record's value, e.g. the
// car park's {"status":"Spaces"} becomes {"status":"SPACES"}; a record without one is handed back unchanged.
// It works on the text: the first "status" after "value" (the host writes "value" after "key" and before
// "headers", so a key or header cannot be hit, but a nested "status" before the value's own could), and it
// assumes the status holds no escape sequences (it would upper-case \n to \N).
//
// Build (the tests do): asc rewrite.ts --runtime stub --use abort=rewrite/abort -O3 -o rewrite.wasm
//   --runtime stub: a bump allocator that `alloc` resets for each record (nothing outlives a record);
//   --use abort=...: AssemblyScript's failures trap here instead of importing `env.abort`, since the host
//   offers no imports.

export function abort(message: string | null, file: string | null, line: u32, column: u32): void {
  unreachable();
}

export function alloc(len: i32): usize {
  // One record at a time: what the previous record used (its answer included, which the host has read) is free.
  heap.reset();
  return heap.alloc(<usize>len);
}

const VALUE = '"value":';
const FIELD = '"status":"';

export function transform(ptr: usize, len: i32): i64 {
  const text = String.UTF8.decodeUnsafe(ptr, <usize>len);
  const value = text.indexOf(VALUE);
  if (value < 0) return -1;
  const start = text.indexOf(FIELD, value);
  if (start < 0 || start > text.lastIndexOf('"headers":')) return (<i64>ptr << 32) | <i64>len; // unchanged
  const from = start + FIELD.length;
  const to = text.indexOf('"', from);
  if (to < 0) return -1;
  const answer = text.substring(0, from) + text.substring(from, to).toUpperCase() + text.substring(to);
  const bytes = String.UTF8.encode(answer);
  return (<i64>changetype<usize>(bytes) << 32) | <i64>bytes.byteLength;
}
