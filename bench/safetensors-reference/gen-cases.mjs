import { writeFileSync } from 'node:fs';
const io = await import(new URL('../../dist/io/index.js', import.meta.url).href);
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function handMade(header, data, pad = 0) {
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad));
  const p = Buffer.alloc(8);
  p.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([p, json, data]);
}
const vals = new Float32Array(24).map((_, i) => i - 3.5);
const bases = [
  handMade(
    {
      __metadata__: { format: 'pt' },
      w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
      h: { dtype: 'F16', shape: [4], data_offsets: [24, 32] },
    },
    Buffer.alloc(32, 1),
  ),
  handMade(
    {
      a: { dtype: 'BF16', shape: [3, 4], data_offsets: [0, 24] },
      b: { dtype: 'F32', shape: [2, 3], data_offsets: [24, 48] },
      c: { dtype: 'I32', shape: [2], data_offsets: [48, 56] },
      s: { dtype: 'F16', shape: [], data_offsets: [56, 58] },
    },
    Buffer.concat([
      Buffer.from(vals.buffer).subarray(0, 48),
      Buffer.from(vals.buffer).subarray(0, 8),
      Buffer.from([0, 0x3c]),
    ]),
    5,
  ),
];
const r = rng(4242);
const ri = (n) => Math.floor(r() * n);
const specials = [...'{}[]":,0123456789-.eE '];
const out = [];
const ours = [];
for (let it = 0; it < 30000; it++) {
  const base = bases[ri(2)];
  let buf = Buffer.from(base);
  const hdrEnd = 8 + Number(base.readBigUInt64LE(0));
  const kind = ri(6);
  if (kind === 0) buf[8 + ri(hdrEnd - 8)] = specials[ri(specials.length)].charCodeAt(0);
  else if (kind === 1) {
    const txt = buf.subarray(8, hdrEnd).toString('latin1');
    const nums = [...txt.matchAll(/\d+/g)];
    const m = nums[ri(nums.length)];
    const rep = [String(ri(100)), '0', '1e3', '-1', '2.5'][ri(5)];
    const j = Buffer.from(txt.slice(0, m.index) + rep + txt.slice(m.index + m[0].length), 'latin1');
    const p = Buffer.alloc(8);
    p.writeBigUInt64LE(BigInt(j.length));
    buf = Buffer.concat([p, j, base.subarray(hdrEnd)]);
  } else if (kind === 2) buf = buf.subarray(0, ri(buf.length));
  else if (kind === 3) buf = Buffer.concat([buf, Buffer.alloc(1 + ri(40), ri(256))]);
  else if (kind === 4) {
    const t = buf
      .subarray(8, hdrEnd)
      .toString('latin1')
      .replace(
        /"(F32|F16|BF16|I32)"/,
        `"${['F32', 'F16', 'BF16', 'I64', 'U8', 'X', 'F4', 'F6_E3M2', 'C64', 'F8_E8M0', 'F8_E5M2FNUZ'][ri(11)]}"`,
      );
    buf = Buffer.concat([buf.subarray(0, 8), Buffer.from(t, 'latin1'), buf.subarray(hdrEnd)]);
  } else buf[ri(buf.length)] = ri(256);
  let ok = 1;
  try {
    await io.SafetensorsFile.fromBuffer(buf);
  } catch (e) {
    if (e.code !== 'E_FORMAT') throw e;
    ok = 0;
  }
  ours.push(ok);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(buf.length);
  out.push(len, buf);
}
writeFileSync(process.argv[2] + '/cases.bin', Buffer.concat(out));
writeFileSync(process.argv[2] + '/ours.json', JSON.stringify(ours));
