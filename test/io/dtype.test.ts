import { describe, expect, it } from 'vitest';

import {
  decodeBF16,
  decodeF16,
  decodeHalfAsync,
  encodeFloats,
  encodeFloatsAsync,
  f16ToF32Table,
  toBF16Bits,
  toF16Bits,
} from '../../lib/io/dtype.js';

/** IEEE 754 binary16 value from its bits, by the textbook formula (reference for the table). */
function f16Reference(h: number): number {
  const s = h >> 15 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 31) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * Math.pow(2, -24);
  return s * (1 + m / 1024) * Math.pow(2, e - 15);
}

/** bfloat16 value from its bits by the formula (8-bit exponent, 7-bit mantissa). */
function bf16Reference(b: number): number {
  const s = b >> 15 ? -1 : 1;
  const e = (b >> 7) & 255;
  const m = b & 127;
  if (e === 255) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * Math.pow(2, -133);
  return s * (1 + m / 128) * Math.pow(2, e - 127);
}

describe('decodeF16', () => {
  it('decodes all 65,536 bit patterns exactly (NaN, Inf, subnormals, signed zeros)', () => {
    const src = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) src[i] = i;
    const out = new Float32Array(65536);
    decodeF16(src, out);
    let nans = 0;
    let subnormals = 0;
    for (let h = 0; h < 65536; h++) {
      const ref = f16Reference(h);
      if (Number.isNaN(ref)) {
        nans++;
        expect(Number.isNaN(out[h])).toBe(true);
      } else {
        if (!Object.is(out[h], ref)) expect({ h, got: out[h] }).toEqual({ h, got: ref });
        if (((h >> 10) & 31) === 0 && (h & 1023) !== 0) subnormals++;
      }
    }
    expect(nans).toBe(2 * 1023);
    expect(subnormals).toBe(2 * 1023);
    expect(out[0x7c00]).toBe(Infinity);
    expect(out[0xfc00]).toBe(-Infinity);
    expect(Object.is(out[0x8000], -0)).toBe(true);
    expect(out[0x0001]).toBe(5.960464477539063e-8);
    expect(out[0x7bff]).toBe(65504);
    expect(f16ToF32Table()).toBe(f16ToF32Table());
  });

  it('writes at the given destination offset', () => {
    const out = new Float32Array(4).fill(7);
    decodeF16(Uint16Array.of(0x3c00, 0xc000), out, 1);
    expect([...out]).toEqual([7, 1, -2, 7]);
  });
});

describe('decodeBF16', () => {
  it('decodes all 65,536 bit patterns exactly', () => {
    const src = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) src[i] = i;
    const out = new Float32Array(65536);
    decodeBF16(src, out);
    for (let b = 0; b < 65536; b++) {
      const ref = bf16Reference(b);
      if (Number.isNaN(ref)) expect(Number.isNaN(out[b])).toBe(true);
      else if (!Object.is(out[b], ref)) expect({ b, got: out[b] }).toEqual({ b, got: ref });
    }
  });
});

/** Nearest-even rounding of `v` onto the sorted finite grid given by `decode` over bit patterns. */
function roundTiesEven(v: number, lo: number, hi: number, vLo: number, vHi: number): number {
  const dLo = Math.abs(v - vLo);
  const dHi = Math.abs(vHi - v);
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  return (lo & 1) === 0 ? lo : hi;
}

describe('toF16Bits (F32 -> F16, round to nearest even)', () => {
  it('is the identity on every F16 value and maps NaN to NaN', () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16Reference(h);
      if (Number.isNaN(v)) expect(Number.isNaN(f16Reference(toF16Bits(v)))).toBe(true);
      else expect(toF16Bits(v)).toBe(h);
    }
  });

  it('rounds midpoints and near-midpoints between neighbours as IEEE requires', () => {
    // Positive finite patterns 0..0x7bff are increasing in value; also test the step to Inf.
    for (let h = 0; h < 0x7c00; h++) {
      const a = f16Reference(h);
      const b = h === 0x7bff ? 65536 : f16Reference(h + 1); // 65536 = where Inf would sit on the grid
      const mid = (a + b) / 2; // exact in float32: needs at most 12 significant bits
      const expected = roundTiesEven(mid, h, h + 1, a, b);
      expect(toF16Bits(mid)).toBe(expected);
      expect(toF16Bits(-mid)).toBe(expected | 0x8000);
      const f = new Float32Array([mid]);
      const bits = new Uint32Array(f.buffer);
      bits[0] += 1; // just above the midpoint
      expect(toF16Bits(f[0])).toBe(h + 1);
      bits[0] -= 2; // just below
      expect(toF16Bits(f[0])).toBe(h);
    }
    expect(toF16Bits(1e6)).toBe(0x7c00);
    expect(toF16Bits(1e-10)).toBe(0);
  });
});

describe('toBF16Bits (F32 -> BF16, round to nearest even)', () => {
  it('matches a float64 nearest-even reference on 200,000 seeded random floats', () => {
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), seed);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < 200000; i++) {
      u[0] = (rnd() ^ (rnd() << 16)) >>> 0;
      if (i % 4 === 0) u[0] = (u[0] & 0xffff0000) | 0x8000; // exact ties
      const v = f[0];
      const got = toBF16Bits(v);
      if (Number.isNaN(v)) {
        expect(Number.isNaN(bf16Reference(got))).toBe(true);
        continue;
      }
      const lo = u[0] >>> 16; // truncation towards zero in magnitude
      const hi = lo + 1;
      const vLo = bf16Reference(lo);
      const vHi = (lo & 0x7fff) === 0x7f7f ? Math.sign(vLo) * 2 ** 128 : bf16Reference(hi & 0xffff);
      if (!Number.isFinite(vLo)) {
        expect(got).toBe(lo);
        continue;
      }
      expect(got).toBe(roundTiesEven(v, lo, hi, vLo, vHi) & 0xffff);
    }
  });
});

describe('encodeFloats', () => {
  it('encodes F32 as the same little-endian bytes and 16-bit types as their bit patterns', () => {
    const v = Float32Array.of(1, -2, 0.1, 65504);
    const f32 = encodeFloats(v, 'F32');
    expect([0, 1, 2, 3].map((i) => f32.readFloatLE(4 * i))).toEqual([...v]);
    const f16 = encodeFloats(v, 'F16');
    expect([f16.readUInt16LE(0), f16.readUInt16LE(2), f16.readUInt16LE(6)]).toEqual([0x3c00, 0xc000, 0x7bff]);
    const bf = encodeFloats(Float32Array.of(1, -2), 'BF16');
    expect([bf.readUInt16LE(0), bf.readUInt16LE(2)]).toEqual([0x3f80, 0xc000]);
  });
  it('rejects other dtypes with E_ARGUMENT', () => {
    expect(() => encodeFloats(new Float32Array(1), 'I8' as never)).toThrow(
      expect.objectContaining({ code: 'E_ARGUMENT' }),
    );
  });
});

describe('encodeFloatsAsync and decodeHalfAsync', () => {
  // Large arrays take the native codec off the calling thread, small ones the inline one: both must
  // give the bytes of the synchronous functions (themselves checked against references above).
  const values = (n: number) => {
    const u = new Uint32Array(n);
    let x = 0x9e3779b9;
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + i) >>> 0;
      u[i] = i % 3 === 0 ? (x & 0x8fffe000) | 0x38001000 : x; // every third an F16 midpoint
    }
    return new Float32Array(u.buffer);
  };
  for (const n of [5, 1 << 16, (1 << 20) + 3])
    it(`encode the bytes of encodeFloats (${n} values)`, async () => {
      const v = values(n);
      for (const dtype of ['F32', 'F16', 'BF16'] as const)
        expect((await encodeFloatsAsync(v, dtype)).equals(encodeFloats(v, dtype))).toBe(true);
    });
  it('decode into an offset of the output like decodeF16 / decodeBF16 (finite values)', async () => {
    const n = (1 << 20) + 3;
    const src = new Uint16Array(n).map((_, i) => (i * 40503) & 0x7bff); // finite F16 and BF16 patterns
    for (const [dtype, sync] of [
      ['F16', decodeF16],
      ['BF16', decodeBF16],
    ] as const) {
      const want = new Float32Array(n + 10).fill(7);
      sync(src, want, 4);
      const got = new Float32Array(n + 10).fill(7);
      await decodeHalfAsync(src, dtype, got, 4);
      expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    }
  });
  it('reject a bad dtype and an output too short', async () => {
    await expect(encodeFloatsAsync(new Float32Array(1 << 17), 'I8' as never)).rejects.toMatchObject({
      code: 'E_ARGUMENT',
      message: 'dtype must be "F32", "F16" or "BF16", received "I8"',
    });
    await expect(decodeHalfAsync(new Uint16Array(4), 'F16', new Float32Array(5), 2)).rejects.toMatchObject({
      code: 'E_SHAPE',
      message: 'dst must hold dstOffset + src.length = 6 values, received 5',
    });
  });
});
