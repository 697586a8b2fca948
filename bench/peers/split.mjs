// Held-out splits of the real pairs, and our methods' predictions on them, for bench/peers/quality.py.
//
//   node bench/peers/split.mjs OUT_DIR MINILM_FOLDER [holdout] [seeds]
//
// For each real pair (USE-lite -> GloVe, USE-lite -> MiniLM) the split is the one `evaluateTransfer`
// makes (its heldOutIds per seed; anchors = the other usable shared tokens minus those sharing a
// held-out token's source row, the rule of lib/transfer/evaluateTransfer.ts). Our methods then run on
// exactly that sub-problem through `transferEmbeddings` and their held-out rows are written, so the
// Python side can score every tool's predictions with one metric code. `evaluateTransfer`'s own mean
// cosine is written next to them as a check that the sub-problem is the same (quality.py compares).
//
// Writes OUT_DIR/<pair>/: source.f32 (|V_s| x h_s), target.f32 (rows of the sub-problems' tokens),
// seed<k>.json (anchor and held-out target ids, their source ids), pred-<method>-seed<k>.f32, and
// manifest.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadGloveWink, loadUseLite } from '../../dist/data/index.js';
import { alignVocabularies, evaluateTransfer, transferEmbeddings, wordListVocabulary } from '../../dist/index.js';
import { openSource, prepareTarget } from '../../dist/pipeline/load.js';
import { useLiteVocabulary } from '../../dist/tokenizer/index.js';
import { isAnchor } from '../../dist/transfer/partition.js';

const [outDir, minilm, holdoutArg, seedsArg] = process.argv.slice(2);
if (!outDir || !minilm) throw new Error('usage: node bench/peers/split.mjs OUT_DIR MINILM_FOLDER [holdout] [seeds]');
const holdout = Number(holdoutArg ?? 1000);
const seeds = (seedsArg ?? '0,1,2').split(',').map(Number);

// Our methods in the comparison. `knn-lstsq` is our version of tokensurgeon's
// common_interpolation --weight-scheme least_squares: top-64 by cosine, plain least squares.
const METHODS = [
  { method: 'salt' },
  { method: 'salt-paper' },
  { method: 'focus' },
  { method: 'global-linear' },
  { method: 'wechsel' },
  { method: 'salt-ridge', label: 'knn-lstsq', selection: { topk: 64 }, lambda: 0 },
];

async function pairs() {
  const use = await loadUseLite();
  const S = { data: use.vectors, rows: use.words.length, cols: use.dim };
  const glove = await loadGloveWink();
  const gAlign = alignVocabularies(useLiteVocabulary(use.words), wordListVocabulary(glove.words, 'GloVe 6B'), {
    caseFold: true,
  });
  const out = [
    {
      name: 'use-glove',
      S,
      P: { data: glove.vectors, rows: glove.words.length, cols: glove.dim },
      alignment: gAlign,
      targetTokens: glove.words,
    },
  ];
  const opened = await openSource('build/use-lite-hf', false);
  try {
    const pair = await prepareTarget(opened.preparer, minilm, undefined, { caseFold: true }, () => undefined);
    out.push({
      name: 'use-minilm',
      S: opened.src.embeddings,
      P: pair.target,
      alignment: pair.alignment,
      auxPresent: pair.auxPresent,
      targetTokens: null,
    });
  } finally {
    await opened.close();
  }
  return out;
}

function gather(M, ids) {
  const out = new Float32Array(ids.length * M.cols);
  ids.forEach((r, i) => out.set(M.data.subarray(r * M.cols, (r + 1) * M.cols), i * M.cols));
  return { data: out, rows: ids.length, cols: M.cols };
}

const f32 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

for (const pr of await pairs()) {
  const dir = join(outDir, pr.name);
  mkdirSync(dir, { recursive: true });
  const sid = pr.alignment.sourceIdOfTarget;
  const cat = pr.alignment.category;
  writeFileSync(join(dir, 'source.f32'), f32(pr.S.data));
  const ev = await evaluateTransfer({
    source: pr.S,
    target: pr.P,
    alignment: pr.alignment,
    auxPresent: pr.auxPresent,
    holdout,
    seeds,
    methods: METHODS,
    ranks: false,
  });
  const eligible = [];
  for (let t = 0; t < pr.P.rows; t++) if (isAnchor(t, sid, cat, pr.auxPresent)) eligible.push(t);
  const manifest = {
    pair: pr.name,
    sourceRows: pr.S.rows,
    hs: pr.S.cols,
    ht: pr.P.cols,
    shared: eligible.length,
    alignment: (({ samples: _s, ...r }) => r)(pr.alignment.report),
    methods: METHODS.map((m) => m.label ?? m.method),
    seeds: [],
  };
  const tokenRows = new Map(); // target id -> row in target.f32
  const rowsOf = (ids) =>
    ids.map((t) => {
      if (!tokenRows.has(t)) tokenRows.set(t, tokenRows.size);
      return tokenRows.get(t);
    });
  for (const s of ev.seeds) {
    const held = Array.from(s.heldOutIds);
    const isHeld = new Set(held);
    const heldSources = new Set(held.map((t) => sid[t]));
    const anchors = eligible.filter((t) => !isHeld.has(t) && !heldSources.has(sid[t]));
    if (anchors.length !== s.anchors)
      throw new Error(`${pr.name} seed ${s.seed}: anchors ${anchors.length} != ${s.anchors}`);
    const rows = [...anchors, ...held];
    const subSid = new Int32Array(rows.length).fill(-1);
    anchors.forEach((t, i) => (subSid[i] = sid[t]));
    const subTarget = gather(pr.P, rows);
    const ours = {};
    for (const m of METHODS) {
      const { label, ...spec } = m;
      const name = label ?? m.method;
      const t0 = performance.now();
      const res = await transferEmbeddings({
        ...spec,
        source: pr.S,
        target: subTarget,
        alignment: { sourceIdOfTarget: subSid },
        seed: s.seed,
      });
      const ms = performance.now() - t0;
      const off = anchors.length * pr.S.cols;
      writeFileSync(
        join(dir, `pred-${name}-seed${s.seed}.f32`),
        f32(res.embeddings.subarray(off, off + held.length * pr.S.cols)),
      );
      ours[name] = {
        evaluateMeanCosine: s.methods[name].meanCosine,
        lambda: res.report.lambda?.value ?? null,
        ms,
        hitK: res.report.support?.hitK ?? null,
      };
    }
    const seedInfo = {
      seed: s.seed,
      anchors,
      anchorSources: anchors.map((t) => sid[t]),
      anchorRows: rowsOf(anchors),
      held,
      heldSources: held.map((t) => sid[t]),
      heldRows: rowsOf(held),
      excluded: s.excluded,
      ours,
    };
    if (pr.targetTokens) {
      seedInfo.anchorTokens = anchors.map((t) => pr.targetTokens[t]);
      seedInfo.heldTokens = held.map((t) => pr.targetTokens[t]);
    }
    writeFileSync(join(dir, `seed${s.seed}.json`), JSON.stringify(seedInfo));
    manifest.seeds.push(s.seed);
    console.error(
      `${pr.name} seed ${s.seed}: ${held.length} held out, ${anchors.length} anchors, ${s.excluded} excluded`,
    );
  }
  const order = [...tokenRows.keys()];
  writeFileSync(join(dir, 'target.f32'), f32(gather(pr.P, order).data));
  manifest.targetRows = order.length;
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
}
