/** What the command prints: progress on stderr, the transfer summary, JSON. */
import { resolve } from 'node:path';

import { type ModelTransferReport, REPORT_FILE } from '../pipeline/transfer.js';

/** Progress on stderr: a redrawn line on a TTY (stage, tokens/s, ETA), else one line per finished stage. */
export class Progress {
  private readonly tty: boolean;
  private stage = '';
  private start = 0;
  private lastDraw = 0;
  /** Time of the latest event: a new stage is timed from there (the engine reports a stage only after its first chunk). */
  private lastEvent = performance.now();
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly quiet: boolean,
  ) {
    this.tty = Boolean(stream.isTTY);
  }
  update(stage: string, done: number, total: number): void {
    if (this.quiet) return;
    const now = performance.now();
    if (stage !== this.stage) {
      this.finishLine();
      this.stage = stage;
      this.start = this.lastEvent;
    }
    this.lastEvent = now;
    if (this.tty) {
      if (now - this.lastDraw < 100 && done < total) return;
      this.lastDraw = now;
      const s = (now - this.start) / 1000;
      const frac = total > 0 ? done / total : 0;
      const width = 24;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      const rate = s > 0 && total > 1 ? `${Math.round(done / s).toLocaleString('en-US')}/s` : '';
      const eta = frac > 0 && frac < 1 ? `ETA ${((s * (1 - frac)) / frac).toFixed(0)} s` : '';
      this.stream.write(`\r\x1b[K${stage.padEnd(12)} [${bar}] ${done}/${total} ${rate} ${eta}`);
    } else if (done >= total) {
      this.stream.write(`${stage}: done (${total}) in ${((now - this.start) / 1000).toFixed(2)} s\n`);
      this.stage = '';
    }
  }
  finishLine(): void {
    if (this.tty && this.stage) this.stream.write('\r\x1b[K');
  }
}

export const fmtMs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export function summarise(r: ModelTransferReport): string {
  const c = r.transfer.counts;
  const lines = [
    `${r.output}: ${r.shapes.targetVocab} tokens x ${r.shapes.sourceWidth} (${r.written.dtype}${r.shapes.tied ? ', tied head' : `, untied head x ${r.shapes.headWidth}`})`,
    `  method ${r.transfer.method}; copied ${c.copied}, special ${c.special}, solved ${c.solved}, fallback ${c.fallback}; anchors ${r.transfer.anchors}` +
      (r.transfer.lambda ? `; lambda ${r.transfer.lambda.value}${r.transfer.lambda.auto ? ' (auto)' : ''}` : '') +
      (r.transfer.support
        ? `; mean support ${r.transfer.support.mean.toFixed(1)}, hit K ${r.transfer.support.hitK}`
        : ''),
    `  aux: ${r.aux.kind}${r.aux.path ? ` ${r.aux.path}` : ''}, ${r.aux.present} of ${r.shapes.targetVocab} tokens with a vector`,
    `  timings: ${Object.entries(r.timings)
      .map(([k, v]) => `${k} ${fmtMs(v)}`)
      .join(', ')}`,
    `  engine: ${Object.entries(r.transfer.timings)
      .map(([k, v]) => `${k} ${fmtMs(v)}`)
      .join(', ')}`,
    `  report: ${resolve(r.output, REPORT_FILE)}`,
  ];
  return lines.join('\n');
}

export function toJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      ArrayBuffer.isView(x)
        ? Array.from(x as unknown as ArrayLike<number>)
        : typeof x === 'number' && !Number.isFinite(x)
          ? null
          : x,
    2,
  );
}
