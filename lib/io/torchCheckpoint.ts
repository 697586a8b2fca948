/**
 * Reader for PyTorch checkpoints written by `torch.save` (the zip format of torch >= 1.6, e.g.
 * `pytorch_model.bin`), without executing any code: the zip container is parsed here, and the
 * `data.pkl` pickle is run by a small virtual machine that knows only the opcodes `torch.save`
 * emits and only an allow-list of globals (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
 * `torch._utils._rebuild_tensor`, `torch._utils._rebuild_parameter` and the `torch.<Type>Storage`
 * classes); any other global is refused with E_UNSAFE before anything else happens. Tensor data is
 * read by positioned reads from the zip's stored (uncompressed) `data/<key>` entries.
 */
import { describe, SaltError, SaltTypeError } from '../errors.js';
import { decodeHalfAsync, type Dtype, DTYPE_SIZE, float32Allocator, isFloatDtype } from './dtype.js';
import {
  allocate,
  BufferSource,
  type ByteSource,
  bytesToFloat32,
  checkLittleEndian,
  CHUNK_BYTES,
  type ReadFloat32Options,
  readRange,
  type TensorInfo,
  type TensorReader,
  withFileSource,
} from './safetensors.js';

/** Largest accepted `data.pkl` (the pickle of a 70B-parameter state dict is well under 1 MB). */
export const MAX_PICKLE_BYTES = 64 << 20;
/** Largest accepted zip central directory. */
const MAX_CENTRAL_DIRECTORY_BYTES = 64 << 20;
/** Limits of the pickle machine: stack depth, open MARKs, memo entries. */
const MAX_STACK = 1 << 20;
const MAX_MARKS = 1 << 12;
const MAX_MEMO = 1 << 20;

/** The `torch.<Type>Storage` classes read, and the dtype of their elements. */
const STORAGE_DTYPES: Readonly<Record<string, Dtype>> = Object.freeze({
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
});

/** Globals a checkpoint may name (module + ' ' + name); every other is E_UNSAFE. */
const ALLOWED_GLOBALS: ReadonlySet<string> = new Set([
  'collections OrderedDict',
  'torch._utils _rebuild_tensor_v2',
  'torch._utils _rebuild_tensor',
  'torch._utils _rebuild_parameter',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch ${s}`),
]);

// ---------------------------------------------------------------------------------------------
// Zip container

/** A stored entry of the zip: where its bytes are in the file. */
interface ZipEntry {
  readonly name: string;
  readonly dataOffset: number;
  readonly size: number;
}

function fmt(label: string, msg: string): SaltError {
  return new SaltError('E_FORMAT', `${label}: ${msg}`);
}

async function readAt(src: ByteSource, pos: number, len: number): Promise<Buffer> {
  const b = Buffer.alloc(len);
  if (len) await src.read(b, pos);
  return b;
}

/** Reads a 64-bit little-endian field as a safe integer. */
function u64(b: Buffer, at: number, label: string, what: string): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fmt(label, `zip ${what} ${v} is too large`);
  return Number(v);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses the zip's central directory (ZIP64 included) and the local headers, and returns the
 * entries by name. Only stored (uncompressed), unencrypted entries on one disk are accepted.
 */
async function readZip(src: ByteSource): Promise<Map<string, ZipEntry>> {
  const label = src.label;
  const size = src.size;
  if (size < 22) throw fmt(label, `file is ${size} bytes, too short for a zip archive`);
  const tailLen = Math.min(size, 22 + 0xffff);
  const tail = await readAt(src, size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50 && i + 22 + tail.readUInt16LE(i + 20) === tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0)
    throw fmt(label, 'expected a zip archive (the torch.save format), received no end-of-central-directory record');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (tail.readUInt16LE(eocd + 4) !== 0 || tail.readUInt16LE(eocd + 6) !== 0)
    throw new SaltError('E_UNSUPPORTED', `${label}: multi-disk zip archives are not supported`);
  const eocdPos = size - tailLen + eocd;
  if (eocdPos >= 20) {
    const loc = await readAt(src, eocdPos - 20, 20);
    if (loc.readUInt32LE(0) === 0x07064b50) {
      const z64Pos = u64(loc, 8, label, 'ZIP64 record offset');
      if (z64Pos + 56 > eocdPos - 20) throw fmt(label, `ZIP64 end record at ${z64Pos} lies outside the file`);
      const z = await readAt(src, z64Pos, 56);
      if (z.readUInt32LE(0) !== 0x06064b50) throw fmt(label, `no ZIP64 end record at byte ${z64Pos}`);
      count = u64(z, 32, label, 'entry count');
      cdSize = u64(z, 40, label, 'central directory size');
      cdOffset = u64(z, 48, label, 'central directory offset');
    }
  }
  if (cdSize > MAX_CENTRAL_DIRECTORY_BYTES)
    throw new SaltError(
      'E_UNSUPPORTED',
      `${label}: zip central directory of ${cdSize} bytes exceeds the limit of ${MAX_CENTRAL_DIRECTORY_BYTES}`,
    );
  if (cdOffset + cdSize > size)
    throw fmt(
      label,
      `zip central directory [${cdOffset}, ${cdOffset + cdSize}) runs past the end of the ${size}-byte file`,
    );
  if (count > cdSize / 46)
    throw fmt(label, `zip declares ${count} entries but its central directory has ${cdSize} bytes`);
  const cd = await readAt(src, cdOffset, cdSize);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cdSize || cd.readUInt32LE(p) !== 0x02014b50)
      throw fmt(label, `zip central directory entry ${k} is malformed`);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    let csize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let local = cd.readUInt32LE(p + 42);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cdSize) throw fmt(label, `zip central directory entry ${k} runs past the directory`);
    let name: string;
    try {
      name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
    } catch {
      throw fmt(label, `zip entry ${k} has a name that is not valid UTF-8`);
    }
    // ZIP64 extended information: the 64-bit values of the fields saturated at 0xFFFFFFFF, in order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (e + 4 + len > extraEnd) throw fmt(label, `zip entry ${JSON.stringify(name)} has a malformed extra field`);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (): number => {
          if (q + 8 > e + 4 + len) throw fmt(label, `zip entry ${JSON.stringify(name)} has a short ZIP64 field`);
          const v = u64(cd, q, label, `size or offset of entry ${JSON.stringify(name)}`);
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = take();
        if (csize === 0xffffffff) csize = take();
        if (local === 0xffffffff) local = take();
      }
      e += 4 + len;
    }
    p = end;
    if (flags & 1) throw new SaltError('E_UNSUPPORTED', `${label}: zip entry ${JSON.stringify(name)} is encrypted`);
    if (method !== 0)
      throw new SaltError(
        'E_UNSUPPORTED',
        `${label}: zip entry ${JSON.stringify(name)} is compressed (method ${method}); torch.save writes stored (uncompressed) entries only, received a re-packed archive`,
      );
    if (csize !== usize)
      throw fmt(label, `stored zip entry ${JSON.stringify(name)} has compressed size ${csize} but size ${usize}`);
    if (local + 30 > size)
      throw fmt(label, `zip entry ${JSON.stringify(name)}: local header at ${local} lies outside the file`);
    const lh = await readAt(src, local, 30);
    if (lh.readUInt32LE(0) !== 0x04034b50)
      throw fmt(label, `zip entry ${JSON.stringify(name)}: no local header at byte ${local}`);
    const dataOffset = local + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
    if (dataOffset + usize > size)
      throw fmt(
        label,
        `zip entry ${JSON.stringify(name)}: ${usize} bytes at ${dataOffset} run past the end of the ${size}-byte file`,
      );
    if (entries.has(name)) throw fmt(label, `zip entry ${JSON.stringify(name)} appears twice`);
    entries.set(name, { name, dataOffset, size: usize });
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Pickle machine

/** A global named by the pickle (only allowed ones are ever created). */
class PGlobal {
  constructor(readonly qualified: string) {}
}
/** A storage, from a persistent id ('storage', <Type>Storage, key, location, numel). */
class PStorage {
  constructor(
    readonly dtype: Dtype,
    readonly key: string,
    readonly numel: number,
  ) {}
}
/** A tensor view on a storage. */
class PTensor {
  constructor(
    readonly storage: PStorage,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}
}
/** A dict or OrderedDict (keys are strings, numbers, booleans or None). */
class PDict {
  readonly map = new Map<unknown, PValue>();
}
/** A list. */
class PList {
  readonly items: PValue[] = [];
}
/** A tuple (frozen array). */
type PTuple = readonly PValue[];
type PValue = null | boolean | number | bigint | string | PGlobal | PStorage | PTensor | PDict | PList | PTuple;

const OPCODE_NAMES: Readonly<Record<number, string>> = {
  0x69: 'INST',
  0x6f: 'OBJ',
  0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
};

function kindOf(v: PValue): string {
  if (v instanceof PGlobal) return `global ${v.qualified.replace(' ', '.')}`;
  if (v instanceof PStorage) return 'storage';
  if (v instanceof PTensor) return 'tensor';
  if (v instanceof PDict) return 'dict';
  if (v instanceof PList) return 'list';
  if (Array.isArray(v)) return `tuple of ${v.length}`;
  return describe(v);
}

function intArg(v: PValue, label: string, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw fmt(label, `${what} must be a non-negative integer, received ${kindOf(v)}`);
  return v;
}

function intTuple(v: PValue, label: string, what: string): number[] {
  if (!Array.isArray(v)) throw fmt(label, `${what} must be a tuple of integers, received ${kindOf(v as PValue)}`);
  return (v as PTuple).map((x) => intArg(x, label, `${what} entries`));
}

/** Calls an allowed global (REDUCE). */
function callGlobal(fn: PValue, args: PValue, label: string): PValue {
  if (!(fn instanceof PGlobal))
    throw new SaltError('E_UNSUPPORTED', `${label}: pickle calls ${kindOf(fn)}, expected one of the allowed globals`);
  if (!Array.isArray(args))
    throw fmt(label, `pickle REDUCE arguments must be a tuple, received ${kindOf(args as PValue)}`);
  const a = args as PTuple;
  switch (fn.qualified) {
    case 'collections OrderedDict':
      if (a.length)
        throw new SaltError('E_UNSUPPORTED', `${label}: OrderedDict built from ${a.length} arguments, expected none`);
      return new PDict();
    case 'torch._utils _rebuild_tensor':
    case 'torch._utils _rebuild_tensor_v2': {
      const min = fn.qualified.endsWith('v2') ? 6 : 4;
      if (a.length < min || a.length > min + 1)
        throw fmt(label, `${fn.qualified.split(' ')[1]} takes ${min} arguments, received ${a.length}`);
      const storage = a[0];
      if (!(storage instanceof PStorage))
        throw fmt(label, `tensor storage must be a persistent storage reference, received ${kindOf(storage)}`);
      const offset = intArg(a[1], label, 'tensor storage offset');
      const shape = intTuple(a[2], label, 'tensor size');
      const stride = intTuple(a[3], label, 'tensor stride');
      if (stride.length !== shape.length)
        throw fmt(label, `tensor size ${JSON.stringify(shape)} and stride ${JSON.stringify(stride)} differ in length`);
      return new PTensor(storage, offset, shape, stride);
    }
    case 'torch._utils _rebuild_parameter':
      if (a.length !== 3 || !(a[0] instanceof PTensor))
        throw fmt(label, `_rebuild_parameter takes (tensor, requires_grad, hooks), received ${a.length} arguments`);
      return a[0];
    default:
      throw new SaltError(
        'E_UNSUPPORTED',
        `${label}: pickle calls ${fn.qualified.replace(' ', '.')}, which builds no tensor or dict`,
      );
  }
}

function checkGlobal(module: string, name: string, label: string): PGlobal {
  const q = `${module} ${name}`;
  if (!ALLOWED_GLOBALS.has(q))
    throw new SaltError(
      'E_UNSAFE',
      `${label}: the pickle names the global ${JSON.stringify(`${module}.${name}`)}, which is not on the allow-list of a weights file (OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter, torch.<Type>Storage); refusing to load it (nothing was executed)`,
    );
  return new PGlobal(q);
}

function makeStorage(pid: PValue, label: string): PStorage {
  if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage')
    throw fmt(
      label,
      `persistent id must be ('storage', type, key, location, numel), received ${kindOf(pid as PValue)}`,
    );
  const [, type, key, , numel] = pid as PTuple;
  if (!(type instanceof PGlobal))
    throw fmt(label, `storage type must be a torch.<Type>Storage class, received ${kindOf(type)}`);
  const dtype = STORAGE_DTYPES[type.qualified.slice('torch '.length)];
  if (!type.qualified.startsWith('torch ') || dtype === undefined)
    throw new SaltError(
      'E_UNSUPPORTED',
      `${label}: storage type ${type.qualified.replace(' ', '.')} is not a tensor storage`,
    );
  if (typeof key !== 'string') throw fmt(label, `storage key must be a string, received ${kindOf(key)}`);
  return new PStorage(dtype, key, intArg(numel, label, 'storage size'));
}

/**
 * Runs a `torch.save` pickle (protocol 2, as torch writes it; the protocol-4 framing opcodes are
 * accepted too). No code is executed: globals come from an allow-list and are interpreted here.
 * @internal
 */
export function unpickle(data: Uint8Array, label: string): unknown {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const n = buf.length;
  let stack: PValue[] = [];
  const marks: PValue[][] = [];
  const memo = new Map<number, PValue>();
  let p = 0;
  const need = (k: number, op: string) => {
    if (p + k > n) throw fmt(label, `pickle ends inside ${op} at byte ${p}`);
  };
  const pop = (op: string): PValue => {
    if (!stack.length) throw fmt(label, `pickle ${op} at byte ${p} on an empty stack`);
    return stack.pop()!;
  };
  const top = (op: string): PValue => {
    if (!stack.length) throw fmt(label, `pickle ${op} at byte ${p} on an empty stack`);
    return stack[stack.length - 1];
  };
  const push = (v: PValue) => {
    if (stack.length >= MAX_STACK)
      throw new SaltError('E_UNSUPPORTED', `${label}: pickle stack deeper than ${MAX_STACK}`);
    stack.push(v);
  };
  const popMark = (op: string): PValue[] => {
    const m = marks.pop();
    if (!m) throw fmt(label, `pickle ${op} at byte ${p} without a MARK`);
    const items = stack;
    stack = m;
    return items;
  };
  const put = (idx: number) => {
    if (!memo.has(idx) && memo.size >= MAX_MEMO)
      throw new SaltError('E_UNSUPPORTED', `${label}: pickle memo larger than ${MAX_MEMO} entries`);
    memo.set(idx, top('PUT'));
  };
  const get = (idx: number) => {
    if (!memo.has(idx)) throw fmt(label, `pickle GET of memo entry ${idx}, which was never PUT`);
    push(memo.get(idx)!);
  };
  const str = (len: number, op: string): string => {
    need(len, op);
    try {
      return utf8.decode(buf.subarray(p, (p += len)));
    } catch {
      throw fmt(label, `pickle ${op} at byte ${p} is not valid UTF-8`);
    }
  };
  const line = (op: string): string => {
    const e = buf.indexOf(0x0a, p);
    if (e < 0 || e - p > 256) throw fmt(label, `pickle ${op} at byte ${p} has no name line`);
    const s = buf.toString('latin1', p, e);
    p = e + 1;
    return s;
  };
  const setItem = (d: PValue, k: PValue, v: PValue) => {
    if (!(d instanceof PDict)) throw fmt(label, `pickle SETITEM on ${kindOf(d)}, expected a dict`);
    if (k !== null && typeof k === 'object')
      throw new SaltError('E_UNSUPPORTED', `${label}: dict key of type ${kindOf(k)}`);
    d.map.set(k, v);
  };
  const append = (l: PValue, v: PValue) => {
    if (!(l instanceof PList)) throw fmt(label, `pickle APPEND on ${kindOf(l)}, expected a list`);
    l.items.push(v);
  };
  while (p < n) {
    const at = p;
    const op = buf[p++];
    switch (op) {
      case 0x80: // PROTO
        need(1, 'PROTO');
        if (buf[p] < 2 || buf[p] > 5)
          throw new SaltError('E_UNSUPPORTED', `${label}: pickle protocol ${buf[p]}, expected 2 to 5`);
        p += 1;
        break;
      case 0x95: // FRAME
        need(8, 'FRAME');
        p += 8;
        break;
      case 0x2e: // STOP
        if (marks.length) throw fmt(label, `pickle STOP at byte ${at} with an open MARK`);
        return pop('STOP');
      case 0x63: {
        // GLOBAL
        const module = line('GLOBAL');
        push(checkGlobal(module, line('GLOBAL'), label));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop('STACK_GLOBAL');
        const module = pop('STACK_GLOBAL');
        if (typeof name !== 'string' || typeof module !== 'string')
          throw fmt(label, `pickle STACK_GLOBAL at byte ${at} needs two strings`);
        push(checkGlobal(module, name, label));
        break;
      }
      case 0x71: // BINPUT
        need(1, 'BINPUT');
        put(buf[p++]);
        break;
      case 0x72: // LONG_BINPUT
        need(4, 'LONG_BINPUT');
        put(buf.readUInt32LE(p));
        p += 4;
        break;
      case 0x94: // MEMOIZE
        put(memo.size);
        break;
      case 0x68: // BINGET
        need(1, 'BINGET');
        get(buf[p++]);
        break;
      case 0x6a: // LONG_BINGET
        need(4, 'LONG_BINGET');
        get(buf.readUInt32LE(p));
        p += 4;
        break;
      case 0x28: // MARK
        if (marks.length >= MAX_MARKS)
          throw new SaltError('E_UNSUPPORTED', `${label}: pickle nests more than ${MAX_MARKS} MARKs`);
        marks.push(stack);
        stack = [];
        break;
      case 0x7d: // EMPTY_DICT
        push(new PDict());
        break;
      case 0x5d: // EMPTY_LIST
        push(new PList());
        break;
      case 0x29: // EMPTY_TUPLE
        push(Object.freeze([]));
        break;
      case 0x74: // TUPLE
        push(Object.freeze(popMark('TUPLE')));
        break;
      case 0x85: // TUPLE1
        push(Object.freeze([pop('TUPLE1')]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop('TUPLE2');
        push(Object.freeze([pop('TUPLE2'), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop('TUPLE3');
        const b = pop('TUPLE3');
        push(Object.freeze([pop('TUPLE3'), b, c]));
        break;
      }
      case 0x4a: // BININT
        need(4, 'BININT');
        push(buf.readInt32LE(p));
        p += 4;
        break;
      case 0x4b: // BININT1
        need(1, 'BININT1');
        push(buf[p++]);
        break;
      case 0x4d: // BININT2
        need(2, 'BININT2');
        push(buf.readUInt16LE(p));
        p += 2;
        break;
      case 0x8a: {
        // LONG1
        need(1, 'LONG1');
        const len = buf[p++];
        need(len, 'LONG1');
        let v = 0n;
        for (let i = len - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[p + i]);
        if (len && buf[p + len - 1] & 0x80) v -= 1n << BigInt(8 * len);
        p += len;
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x58: // BINUNICODE
        need(4, 'BINUNICODE');
        p += 4;
        push(str(buf.readUInt32LE(p - 4), 'BINUNICODE'));
        break;
      case 0x8c: // SHORT_BINUNICODE
        need(1, 'SHORT_BINUNICODE');
        p += 1;
        push(str(buf[p - 1], 'SHORT_BINUNICODE'));
        break;
      case 0x51: // BINPERSID
        push(makeStorage(pop('BINPERSID'), label));
        break;
      case 0x52: {
        // REDUCE
        const args = pop('REDUCE');
        push(callGlobal(pop('REDUCE'), args, label));
        break;
      }
      case 0x62: {
        // BUILD: only the state of an OrderedDict (its `_metadata` attribute), which is ignored.
        const state = pop('BUILD');
        const obj = top('BUILD');
        if (!(obj instanceof PDict))
          throw new SaltError(
            'E_UNSUPPORTED',
            `${label}: pickle BUILD at byte ${at} on ${kindOf(obj)}, expected an OrderedDict`,
          );
        void state;
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop('SETITEM');
        const k = pop('SETITEM');
        setItem(top('SETITEM'), k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark('SETITEMS');
        if (items.length % 2) throw fmt(label, `pickle SETITEMS at byte ${at} with an odd number of items`);
        const d = top('SETITEMS');
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop('APPEND');
        append(top('APPEND'), v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark('APPENDS');
        const l = top('APPENDS');
        for (const v of items) append(l, v);
        break;
      }
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x47: // BINFLOAT
        need(8, 'BINFLOAT');
        push(buf.readDoubleBE(p));
        p += 8;
        break;
      default:
        if (OPCODE_NAMES[op])
          throw new SaltError(
            'E_UNSAFE',
            `${label}: pickle opcode ${OPCODE_NAMES[op]} at byte ${at} can call code; refusing to load it (nothing was executed)`,
          );
        throw new SaltError(
          'E_UNSUPPORTED',
          `${label}: pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at} is not one torch.save writes for a state dict`,
        );
    }
  }
  throw fmt(label, `pickle ends at byte ${n} without STOP`);
}

// ---------------------------------------------------------------------------------------------
// The file

/** A tensor of a PyTorch file: where its storage is and how the view lies on it. */
export interface TorchTensorInfo extends TensorInfo {
  /** Storage key (`data/<key>` in the archive); tensors sharing a storage share the key. */
  readonly storageKey: string;
  /** Offset of the first element, in elements, from the start of the storage. */
  readonly storageOffset: number;
  /** Strides in elements. */
  readonly stride: readonly number[];
  /** True when the elements lie row-major and contiguous in the file (then {@link TensorInfo.fileOffset} is their start). */
  readonly contiguous: boolean;
}

interface Loaded {
  readonly info: TorchTensorInfo;
  /** File offset of the storage's first byte. */
  readonly storageStart: number;
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  if (shape.includes(0)) return true;
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** Copies the elements of a strided view (row-major order) out of `src`, starting at element `base` of `src`. */
function gather(
  src: Uint8Array,
  item: number,
  shape: readonly number[],
  stride: readonly number[],
  base: number,
  out: Uint8Array,
): void {
  const nd = shape.length;
  const count = out.length / item;
  // Copy whole 4- or 2-byte words when both sides are aligned (integer views: bit patterns, NaN
  // payloads included, are kept).
  const word =
    item % 4 === 0 && src.byteOffset % 4 === 0 && out.byteOffset % 4 === 0
      ? 4
      : item % 2 === 0 && src.byteOffset % 2 === 0 && out.byteOffset % 2 === 0
        ? 2
        : 1;
  const view = (a: Uint8Array) =>
    word === 4
      ? new Uint32Array(a.buffer, a.byteOffset, a.length / 4)
      : word === 2
        ? new Uint16Array(a.buffer, a.byteOffset, a.length / 2)
        : a;
  const sv = view(src.subarray(0, src.length - (src.length % word)));
  const ov = view(out);
  const w = item / word;
  const idx = new Array<number>(nd).fill(0);
  let pos = base;
  for (let k = 0; k < count; k++) {
    const s = pos * w;
    const d = k * w;
    for (let b = 0; b < w; b++) ov[d + b] = sv[s + b];
    for (let dim = nd - 1; dim >= 0; dim--) {
      idx[dim]++;
      pos += stride[dim];
      if (idx[dim] < shape[dim]) break;
      pos -= stride[dim] * shape[dim];
      idx[dim] = 0;
    }
  }
}

/**
 * A PyTorch checkpoint file written by `torch.save` (zip format, torch >= 1.6) holding a state dict
 * (a dict or OrderedDict of tensor names to tensors or Parameters), opened for positioned reads
 * without executing code. Views (storage offset, strides), shared storages, F32 / F16 / BF16 and the
 * integer, bool and F64 storages are read; a non-contiguous view is gathered into row-major order.
 * Refused: legacy non-zip files (E_UNSUPPORTED), compressed or encrypted entries (E_UNSUPPORTED),
 * big-endian files (E_UNSUPPORTED), any global outside the allow-list (E_UNSAFE), values other than
 * tensors (E_UNSUPPORTED).
 */
export class TorchFile implements TensorReader {
  /** Where the file came from (a path or a label for an in-memory buffer). */
  readonly path: string;
  /** Total size of the file in bytes. */
  readonly fileSize: number;
  /** Always empty: a PyTorch file has no safetensors-style metadata. */
  readonly metadata: Readonly<Record<string, string>> = Object.freeze({});
  readonly #tensors: Map<string, Loaded>;
  readonly #src: ByteSource;

  private constructor(src: ByteSource, tensors: Map<string, Loaded>) {
    this.#src = src;
    this.path = src.label;
    this.fileSize = src.size;
    this.#tensors = tensors;
  }

  private static async fromSource(src: ByteSource): Promise<TorchFile> {
    checkLittleEndian();
    const label = src.label;
    if (src.size >= 2) {
      const head = await readAt(src, 0, 2);
      if (head[0] === 0x80 && head[1] <= 5)
        throw new SaltError(
          'E_UNSUPPORTED',
          `${label}: legacy (non-zip, torch < 1.6) torch.save format; expected the zip format. Re-save it with a newer torch, or convert it once with Python to safetensors (transformers: save_pretrained(folder_out, safe_serialization=True))`,
        );
    }
    const entries = await readZip(src);
    const pkls = [...entries.keys()].filter((k) => /^[^/]+\/data\.pkl$/.test(k));
    if (pkls.length !== 1)
      throw fmt(label, `expected one <archive>/data.pkl entry (the torch.save zip layout), received ${pkls.length}`);
    const prefix = pkls[0].slice(0, -'data.pkl'.length);
    const bo = entries.get(prefix + 'byteorder');
    if (bo) {
      const text = bo.size <= 16 ? (await readAt(src, bo.dataOffset, bo.size)).toString('latin1') : '';
      if (text === 'big')
        throw new SaltError(
          'E_UNSUPPORTED',
          `${label}: tensors saved on a big-endian machine (byteorder "big"); expected "little"`,
        );
      if (text !== 'little') throw fmt(label, `byteorder entry must be "little" or "big", received ${describe(text)}`);
    }
    const pkl = entries.get(pkls[0])!;
    if (pkl.size > MAX_PICKLE_BYTES)
      throw new SaltError(
        'E_UNSUPPORTED',
        `${label}: data.pkl of ${pkl.size} bytes exceeds the limit of ${MAX_PICKLE_BYTES}`,
      );
    const root = unpickle(await readAt(src, pkl.dataOffset, pkl.size), `${label} (data.pkl)`) as PValue;
    if (!(root instanceof PDict))
      throw new SaltError(
        'E_UNSUPPORTED',
        `${label}: expected a state dict (a dict of tensor names to tensors), received ${kindOf(root)}`,
      );
    const tensors = new Map<string, Loaded>();
    const storageDtype = new Map<string, Dtype>();
    for (const [name, v] of root.map) {
      if (typeof name !== 'string')
        throw new SaltError('E_UNSUPPORTED', `${label}: state dict key ${describe(name)} is not a string`);
      if (!(v instanceof PTensor))
        throw new SaltError(
          'E_UNSUPPORTED',
          `${label}: state dict entry ${JSON.stringify(name)} must be a tensor, received ${kindOf(v)}`,
        );
      const st = v.storage;
      const where = `tensor ${JSON.stringify(name)}`;
      const seen = storageDtype.get(st.key);
      if (seen !== undefined && seen !== st.dtype)
        throw fmt(label, `storage ${JSON.stringify(st.key)} is used as both ${seen} and ${st.dtype}`);
      storageDtype.set(st.key, st.dtype);
      const entry = entries.get(`${prefix}data/${st.key}`);
      if (!entry) throw fmt(label, `${where}: storage entry ${JSON.stringify(`${prefix}data/${st.key}`)} is missing`);
      const item = DTYPE_SIZE[st.dtype];
      if (entry.size !== st.numel * item)
        throw fmt(
          label,
          `${where}: storage ${JSON.stringify(st.key)} of ${st.numel} ${st.dtype} elements needs ${st.numel * item} bytes, but its entry has ${entry.size}`,
        );
      let numel = 1;
      let last = v.offset;
      for (let i = 0; i < v.shape.length; i++) {
        numel *= v.shape[i];
        last += Math.max(0, v.shape[i] - 1) * v.stride[i];
        if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(last))
          throw fmt(label, `${where}: size ${JSON.stringify(v.shape)} is too large`);
      }
      if (numel > 0 && last >= st.numel)
        throw fmt(
          label,
          `${where}: size ${JSON.stringify(v.shape)}, stride ${JSON.stringify(v.stride)} at offset ${v.offset} reaches element ${last}, past the ${st.numel} elements of its storage`,
        );
      // Overlapping strides (stride 0 of an expanded view) make a view larger than its storage: it
      // is read (gathered) only while it is no larger than the whole file, so a small file can never
      // ask for a large allocation or a long copy.
      if (numel * item > src.size)
        throw new SaltError(
          'E_UNSUPPORTED',
          `${label}: ${where} is an overlapping view (size ${JSON.stringify(v.shape)}, stride ${JSON.stringify(v.stride)}) of ${numel * item} bytes, larger than the ${src.size}-byte file; expected a view no larger than the file`,
        );
      tensors.set(name, {
        storageStart: entry.dataOffset,
        info: Object.freeze({
          name,
          dtype: st.dtype,
          shape: Object.freeze([...v.shape]),
          numel,
          fileOffset: entry.dataOffset + Math.min(v.offset, st.numel) * item,
          byteLength: numel * item,
          storageKey: st.key,
          storageOffset: v.offset,
          stride: Object.freeze([...v.stride]),
          contiguous: isContiguous(v.shape, v.stride),
        }),
      });
    }
    return new TorchFile(src, tensors);
  }

  /** Opens and validates a PyTorch file (E_NOT_FOUND, E_IO, E_FORMAT, E_UNSUPPORTED, E_UNSAFE). Call {@link close} when done. */
  static async open(path: string): Promise<TorchFile> {
    return withFileSource(path, 'PyTorch checkpoint', (src) => TorchFile.fromSource(src));
  }

  /** Validates a PyTorch file held in memory (the buffer is not copied). */
  static async fromBuffer(buffer: Uint8Array, label = '<buffer>'): Promise<TorchFile> {
    if (!(buffer instanceof Uint8Array))
      throw new SaltTypeError(`buffer must be a Uint8Array, received ${describe(buffer)}`);
    return TorchFile.fromSource(new BufferSource(buffer, label));
  }

  names(): string[] {
    return [...this.#tensors.keys()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  #get(name: string): Loaded {
    const t = this.#tensors.get(name);
    if (!t) throw new SaltError('E_NOT_FOUND', `${this.path}: no tensor named ${JSON.stringify(name)}`);
    return t;
  }

  info(name: string): TorchTensorInfo {
    return this.#get(name).info;
  }

  /** All tensors, in the state dict's order. */
  tensors(): TorchTensorInfo[] {
    return [...this.#tensors.values()].map((t) => t.info);
  }

  /** Raw bytes of rows [r0, r1) (elements in row-major order), into `out` when given. */
  async #rows(t: Loaded, r0: number, r1: number, out?: Uint8Array): Promise<Uint8Array> {
    const { info } = t;
    const item = DTYPE_SIZE[info.dtype];
    const rows = info.shape.length ? info.shape[0] : 1;
    const rowElems = rows === 0 ? 0 : info.numel / rows;
    const count = (r1 - r0) * rowElems;
    const dst =
      out ??
      allocate(
        () => Buffer.alloc(count * item),
        `${count * item} bytes for tensor ${JSON.stringify(info.name)} of ${this.path}`,
      );
    if (count === 0) return dst;
    if (info.contiguous) {
      await this.#src.read(dst, info.fileOffset + r0 * rowElems * item);
      return dst;
    }
    // Strided view: read the span of the storage the rows touch, then gather.
    const s0 = info.stride[0];
    const first = info.storageOffset + r0 * s0;
    let last = info.storageOffset + (r1 - 1) * s0;
    for (let i = 1; i < info.shape.length; i++) last += (info.shape[i] - 1) * info.stride[i];
    const span = allocate(
      () => Buffer.alloc((last - first + 1) * item),
      `${(last - first + 1) * item} bytes of the storage of tensor ${JSON.stringify(info.name)}`,
    );
    await this.#src.read(span, t.storageStart + first * item);
    gather(span, item, [r1 - r0, ...info.shape.slice(1)], info.stride, 0, dst);
    return dst;
  }

  async readBytes(name: string): Promise<Buffer> {
    const t = this.#get(name);
    const rows = t.info.shape.length ? t.info.shape[0] : 1;
    return (await this.#rows(t, 0, rows)) as Buffer;
  }

  async *streamBytes(name: string, chunkBytes = CHUNK_BYTES): AsyncGenerator<Buffer> {
    const t = this.#get(name);
    const step = Math.max(1, Math.floor(chunkBytes));
    if (!t.info.contiguous) {
      const all = await this.readBytes(name);
      for (let pos = 0; pos < all.length; pos += step) yield all.subarray(pos, pos + step);
      return;
    }
    for (let pos = 0; pos < t.info.byteLength; pos += step) {
      const buf = Buffer.allocUnsafe(Math.min(step, t.info.byteLength - pos));
      await this.#src.read(buf, t.info.fileOffset + pos);
      yield buf;
    }
  }

  async readFloat32(name: string, options: ReadFloat32Options = {}): Promise<Float32Array> {
    const t = this.#get(name);
    const { dtype, shape } = t.info;
    if (!isFloatDtype(dtype))
      throw new SaltError(
        'E_UNSUPPORTED',
        `${this.path}: tensor ${JSON.stringify(name)} has dtype ${dtype}; only F32, F16 and BF16 can be read as Float32 (use readBytes for raw bytes)`,
      );
    const rows = shape.length ? shape[0] : 1;
    const { rowStart, rowEnd, shared } = readRange(name, rows, options);
    const rowElems = rows === 0 ? 0 : t.info.numel / rows;
    const count = (rowEnd - rowStart) * rowElems;
    const alloc = await float32Allocator(shared); // large results are freed off the calling thread
    const result = () =>
      allocate(() => alloc(count), `${count} Float32 values for tensor ${JSON.stringify(name)} of ${this.path}`);
    if (dtype === 'F32') {
      const out = result();
      await this.#rows(t, rowStart, rowEnd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      return out;
    }
    if (!t.info.contiguous) {
      const values = bytesToFloat32(await this.#rows(t, rowStart, rowEnd), dtype);
      if (!shared) return values;
      const out = result();
      out.set(values);
      return out;
    }
    // Contiguous 16-bit: decode chunk by chunk, as the safetensors reader does, so peak memory stays
    // near the Float32 result's size.
    const out = result();
    const chunkElems = CHUNK_BYTES / 2;
    const scratch = new Uint16Array(Math.min(chunkElems, count));
    const scratchBytes = new Uint8Array(scratch.buffer);
    const start = t.info.fileOffset + rowStart * rowElems * 2;
    for (let done = 0; done < count; done += chunkElems) {
      const k = Math.min(chunkElems, count - done);
      await this.#src.read(scratchBytes.subarray(0, k * 2), start + done * 2);
      await decodeHalfAsync(scratch.subarray(0, k), dtype, out, done); // off the calling thread
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#src.close();
  }
}
