/**
 * Files of an evaluation (`salt-transfer evaluate`): JSON (everything), CSV (one row per seed and
 * method, plus the means) and an SVG bar chart of the mean cosine per method, written by hand.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { writeBytesAtomic } from '../io/atomic.js';
import type { EvaluationResult, MethodScores } from '../transfer/evaluateTransfer.js';

/** The evaluation as plain JSON: typed arrays become arrays, NaN becomes null. */
export function evaluationToJson(result: EvaluationResult, extra: Record<string, unknown> = {}): string {
  return (
    JSON.stringify(
      { ...extra, ...result },
      (_k, v) =>
        ArrayBuffer.isView(v)
          ? Array.from(v as unknown as ArrayLike<number>)
          : typeof v === 'number' && !Number.isFinite(v)
            ? null
            : v,
      2,
    ) + '\n'
  );
}

const num = (v: number | undefined, d = 6) =>
  v === undefined || Number.isNaN(v) ? '' : Number(v.toFixed(d)).toString();

/** CSV: `seed,method,meanCosine,meanRelL2,meanRank,medianRank,pAt1,pAt5,lambda,heldOut,anchors`; seed `mean` rows average the seeds. */
export function evaluationToCsv(result: EvaluationResult): string {
  const rows = ['seed,method,meanCosine,meanRelL2,meanRank,medianRank,pAt1,pAt5,lambda,heldOut,anchors'];
  for (const s of result.seeds) {
    for (const l of result.labels) {
      const m = s.methods[l];
      rows.push(
        [
          s.seed,
          csvField(l),
          num(m.meanCosine),
          num(m.meanRelL2),
          num(m.meanRank, 3),
          num(m.medianRank, 3),
          num(m.pAt1),
          num(m.pAt5),
          num(m.lambda),
          s.heldOut,
          s.anchors,
        ].join(','),
      );
    }
  }
  for (const l of result.labels) {
    const m = result.mean[l];
    rows.push(
      [
        'mean',
        csvField(l),
        num(m.meanCosine),
        num(m.meanRelL2),
        num(m.meanRank, 3),
        num(m.medianRank, 3),
        num(m.pAt1),
        num(m.pAt5),
        '',
        '',
        '',
      ].join(','),
    );
  }
  return rows.join('\n') + '\n';
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * An SVG bar chart: one horizontal bar per method (mean cosine averaged over seeds), a dot per seed,
 * the value printed at the bar's end, an axis from min(0, lowest) to 1; to the right, a table of the
 * rank measures averaged over seeds (P@1, P@5, mean rank, median rank; the best of each in bold).
 */
export function evaluationToSvg(
  result: EvaluationResult,
  title = 'Held-out shared tokens: mean cosine to the true row',
): string {
  const labels = result.labels;
  const rowH = 26,
    left = 130,
    width = 900,
    top = 56,
    plotW = 570 - left,
    tableX = 640;
  const columns: {
    head: string;
    get: (m: MethodScores) => number;
    digits: number;
    low: boolean;
  }[] = [
    { head: 'P@1', get: (m) => m.pAt1, digits: 3, low: false },
    { head: 'P@5', get: (m) => m.pAt5, digits: 3, low: false },
    { head: 'mean rank', get: (m) => m.meanRank, digits: 1, low: true },
    { head: 'median', get: (m) => m.medianRank, digits: 1, low: true },
  ];
  const height = top + labels.length * rowH + 44;
  const values = labels
    .flatMap((l) => [result.mean[l].meanCosine, ...result.seeds.map((s) => s.methods[l].meanCosine)])
    .filter((v) => Number.isFinite(v));
  const lo = Math.min(0, Math.floor(Math.min(...values, 0) * 10) / 10);
  const hi = 1;
  const x = (v: number) => left + ((v - lo) / (hi - lo)) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  const s0 = result.seeds[0];
  out.push(
    `<text x="${width / 2}" y="38" text-anchor="middle" fill="#555">${esc(`${s0 ? s0.heldOut : 0} held out, ${s0 ? s0.anchors : 0} anchors, seeds ${result.seeds.map((s) => s.seed).join(', ')}; bar = mean over seeds, dots = per seed`)}</text>`,
  );
  for (let v = lo; v <= hi + 1e-9; v += 0.2) {
    const xv = x(v).toFixed(1);
    out.push(
      `<line x1="${xv}" y1="${top - 4}" x2="${xv}" y2="${top + labels.length * rowH}" stroke="${Math.abs(v) < 1e-9 ? '#333' : '#ddd'}"/>`,
    );
    out.push(
      `<text x="${xv}" y="${top + labels.length * rowH + 16}" text-anchor="middle" fill="#555">${v.toFixed(1)}</text>`,
    );
  }
  out.push(`<text x="${left + plotW / 2}" y="${height - 8}" text-anchor="middle">mean cosine</text>`);
  const best = Math.max(...labels.map((l) => result.mean[l].meanCosine).filter((v) => Number.isFinite(v)));
  columns.forEach((c, j) => {
    const cx = tableX + j * 66;
    out.push(`<text x="${cx}" y="${top - 8}" text-anchor="end" fill="#555">${esc(c.head)}</text>`);
    const vals = labels.map((l) => c.get(result.mean[l])).filter((v) => Number.isFinite(v));
    const top1 = vals.length ? (c.low ? Math.min(...vals) : Math.max(...vals)) : NaN;
    labels.forEach((l, i) => {
      const v = c.get(result.mean[l]);
      const y = top + i * rowH + rowH / 2 + 4;
      const text = Number.isFinite(v) ? v.toFixed(c.digits) : '–';
      out.push(
        `<text x="${cx}" y="${y}" text-anchor="end"${v === top1 ? ' font-weight="bold"' : ''}>${esc(text)}</text>`,
      );
    });
  });
  labels.forEach((l, i) => {
    const y = top + i * rowH;
    const m = result.mean[l].meanCosine;
    out.push(`<text x="${left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(l)}</text>`);
    if (Number.isFinite(m)) {
      const x0 = x(Math.min(0, m)),
        x1 = x(Math.max(0, m));
      out.push(
        `<rect x="${x0.toFixed(1)}" y="${y + 4}" width="${Math.max(0.5, x1 - x0).toFixed(1)}" height="${rowH - 8}" fill="${m === best ? '#2a7ab9' : '#9cc3e0'}"/>`,
      );
      out.push(`<text x="${(x(Math.max(0, m)) + 4).toFixed(1)}" y="${y + rowH / 2 + 4}">${m.toFixed(3)}</text>`);
    }
    for (const s of result.seeds) {
      const v = s.methods[l].meanCosine;
      if (Number.isFinite(v)) out.push(`<circle cx="${x(v).toFixed(1)}" cy="${y + rowH / 2}" r="2.5" fill="#c0392b"/>`);
    }
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Writes `evaluation.json`, `evaluation.csv` and `evaluation.svg` into `folder` (created; each file atomically). */
export async function writeEvaluationFiles(
  folder: string,
  result: EvaluationResult,
  extra: Record<string, unknown> = {},
): Promise<string[]> {
  await mkdir(folder, { recursive: true });
  const files = [join(folder, 'evaluation.json'), join(folder, 'evaluation.csv'), join(folder, 'evaluation.svg')];
  await writeBytesAtomic(files[0], evaluationToJson(result, extra), { overwrite: true });
  await writeBytesAtomic(files[1], evaluationToCsv(result), { overwrite: true });
  await writeBytesAtomic(files[2], evaluationToSvg(result), { overwrite: true });
  return files;
}
