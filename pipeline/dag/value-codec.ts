// A value as JSON plus one binary blob holding its typed arrays: how a cache entry
// stores a stage's output. The JSON names each array's type, offset and length;
// decoding makes views into the blob, without copying.

const TYPED_ARRAYS = { Float32Array, Float64Array, Uint8Array, Uint32Array, Int32Array } as const;
type TypedArrayName = keyof typeof TYPED_ARRAYS;
type AnyTypedArray = InstanceType<(typeof TYPED_ARRAYS)[TypedArrayName]>;
const ALIGN = 8; // every array starts on an 8-byte boundary so it can be viewed in place

function typedArrayName(value: unknown): TypedArrayName | null {
  for (const name of Object.keys(TYPED_ARRAYS) as TypedArrayName[]) {
    if (value instanceof TYPED_ARRAYS[name]) return name;
  }
  return null;
}

/** Splits a value into JSON and one binary blob holding its typed arrays, in pieces: the arrays themselves, not a copy. */
export function encodeValue(value: unknown): { json: string; arrays: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const walk = (node: unknown): unknown => {
    const typed = typedArrayName(node);
    if (typed) {
      const array = node as AnyTypedArray;
      const padding = (ALIGN - (offset % ALIGN)) % ALIGN;
      if (padding) chunks.push(Buffer.alloc(padding));
      offset += padding;
      chunks.push(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      const ref = { $typed: typed, offset, length: array.length };
      offset += array.byteLength;
      return ref;
    }
    if (typeof node === 'number' && !Number.isFinite(node)) return { $number: String(node) };
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v)]));
    }
    return node;
  };
  const json = JSON.stringify(walk(value));
  return { json, arrays: chunks };
}

/** Rebuilds a value from its JSON and blob; arrays are views into the blob, or null without one (a summary). */
export function decodeValue<T>(json: string, arrays: Buffer | null): T {
  // Views need an aligned start; a Buffer from the pool may not have one.
  const base = arrays === null || arrays.byteOffset % ALIGN === 0 ? arrays : Buffer.from(new Uint8Array(arrays));
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      if (typeof record.$typed === 'string' && record.$typed in TYPED_ARRAYS) {
        if (base === null) return null;
        const Ctor = TYPED_ARRAYS[record.$typed as TypedArrayName];
        return new Ctor(base.buffer as ArrayBuffer, base.byteOffset + (record.offset as number), record.length as number);
      }
      if (typeof record.$number === 'string') return Number(record.$number);
      return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, walk(v)]));
    }
    return node;
  };
  return walk(JSON.parse(json)) as T;
}
