// numpy's .npz format, written without numpy: a zip of .npy files, stored (no compression),
// as np.savez writes it. np.load(path)['w1'] then gives the array named w1.
//
//   .npz = [local header + name + w1.npy] [local header + name + b1.npy] … [central directory] [end record]
//   .npy = NPY_MAGIC, version 1.0, header length (uint16 LE), header dict padded to NPY_ALIGNMENT, data
//
// Every field is little-endian. The zip's timestamps are fixed, so the same arrays give the same bytes.

import { crc32 } from 'node:zlib';

/** One float32 array, row-major, with its numpy shape. */
export interface NpyArray {
  name: string; // the key np.load gives it
  shape: readonly number[];
  data: Float32Array;
}

const NPY_MAGIC = [0x93, ...new TextEncoder().encode('NUMPY')];
const NPY_VERSION = [1, 0];
const NPY_PREAMBLE_BYTES = NPY_MAGIC.length + NPY_VERSION.length + 2; // + the header length, uint16
const NPY_ALIGNMENT = 64; // numpy pads the header so the data starts on a multiple of 64
const NPY_MAX_HEADER_BYTES = 0xffff; // version 1.0's header length is a uint16

const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const END_RECORD_SIGNATURE = 0x06054b50;
const LOCAL_HEADER_BYTES = 30;
const CENTRAL_HEADER_BYTES = 46;
const END_RECORD_BYTES = 22;
const ZIP_VERSION = 20; // 2.0: what a reader needs for stored entries in folders
const ZIP_STORED = 0; // compression method: none
const DOS_TIME = 0; // 00:00:00
const DOS_DATE = (1 << 5) | 1; // 1980-01-01 (years since 1980 << 9 | month << 5 | day), the zip format's first day
const ZIP_MAX_BYTES = 0xffffffff; // beyond this a zip needs Zip64, which we do not write

/** The .npy bytes of `array`: descr '<f4', C order, its shape. */
function npyBytes(array: NpyArray): Uint8Array {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (count !== array.data.length) {
    throw new Error(`npy ${array.name}: expected ${count} values for shape (${array.shape.join(', ')}), found ${array.data.length}`);
  }
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const headerBytes = Math.ceil((NPY_PREAMBLE_BYTES + dict.length + 1) / NPY_ALIGNMENT) * NPY_ALIGNMENT - NPY_PREAMBLE_BYTES;
  if (headerBytes > NPY_MAX_HEADER_BYTES) throw new Error(`npy ${array.name}: a header of ${headerBytes} bytes does not fit version 1.0`);
  const header = `${dict.padEnd(headerBytes - 1, ' ')}\n`; // spaces, then a newline, as numpy pads it
  const bytes = new Uint8Array(NPY_PREAMBLE_BYTES + headerBytes + array.data.byteLength);
  const view = new DataView(bytes.buffer);
  bytes.set([...NPY_MAGIC, ...NPY_VERSION]);
  view.setUint16(NPY_MAGIC.length + NPY_VERSION.length, headerBytes, true);
  bytes.set(new TextEncoder().encode(header), NPY_PREAMBLE_BYTES);
  const dataStart = NPY_PREAMBLE_BYTES + headerBytes;
  array.data.forEach((value, i) => view.setFloat32(dataStart + 4 * i, value, true)); // little-endian on any machine
  return bytes;
}

/** The fields a local header and its central-directory entry share, from "version needed" to the name's length. */
function writeEntryFields(view: DataView, at: number, entry: { crc: number; size: number; nameBytes: number }): void {
  view.setUint16(at, ZIP_VERSION, true); // version needed to extract
  view.setUint16(at + 2, 0, true); // flags
  view.setUint16(at + 4, ZIP_STORED, true);
  view.setUint16(at + 6, DOS_TIME, true);
  view.setUint16(at + 8, DOS_DATE, true);
  view.setUint32(at + 10, entry.crc, true);
  view.setUint32(at + 14, entry.size, true); // compressed size: stored, so the same
  view.setUint32(at + 18, entry.size, true);
  view.setUint16(at + 22, entry.nameBytes, true);
}

/** The .npz bytes of `arrays`, each stored as <name>.npy, in order. */
export function npzBytes(arrays: readonly NpyArray[]): Uint8Array {
  const entries = arrays.map((array) => {
    const name = new TextEncoder().encode(`${array.name}.npy`);
    const data = npyBytes(array);
    return { name, data, crc: crc32(data), size: data.length, nameBytes: name.length, offset: 0 };
  });
  const localBytes = entries.reduce((sum, entry) => sum + LOCAL_HEADER_BYTES + entry.nameBytes + entry.size, 0);
  const centralBytes = entries.reduce((sum, entry) => sum + CENTRAL_HEADER_BYTES + entry.nameBytes, 0);
  const total = localBytes + centralBytes + END_RECORD_BYTES;
  if (total > ZIP_MAX_BYTES) throw new Error(`npz: ${total} bytes need Zip64, which this writer does not write`);
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const entry of entries) {
    entry.offset = at;
    view.setUint32(at, LOCAL_HEADER_SIGNATURE, true);
    writeEntryFields(view, at + 4, entry);
    view.setUint16(at + 28, 0, true); // extra field length
    bytes.set(entry.name, at + LOCAL_HEADER_BYTES);
    bytes.set(entry.data, at + LOCAL_HEADER_BYTES + entry.nameBytes);
    at += LOCAL_HEADER_BYTES + entry.nameBytes + entry.size;
  }
  const centralStart = at;
  for (const entry of entries) {
    view.setUint32(at, CENTRAL_HEADER_SIGNATURE, true);
    view.setUint16(at + 4, ZIP_VERSION, true); // version made by (MS-DOS attributes)
    writeEntryFields(view, at + 6, entry);
    // extra and comment lengths, disk number, internal and external attributes: all zero
    view.setUint32(at + 42, entry.offset, true);
    bytes.set(entry.name, at + CENTRAL_HEADER_BYTES);
    at += CENTRAL_HEADER_BYTES + entry.nameBytes;
  }
  view.setUint32(at, END_RECORD_SIGNATURE, true);
  // this disk and the directory's disk: zero
  view.setUint16(at + 8, entries.length, true); // entries on this disk
  view.setUint16(at + 10, entries.length, true); // entries in all
  view.setUint32(at + 12, at - centralStart, true); // the central directory's size
  view.setUint32(at + 16, centralStart, true); // and its offset
  // comment length: zero
  return bytes;
}
