// `shardtrain inspect FILE`: the tensors of a safetensors checkpoint (name, dtype, shape), its step, config and
// whether its checksums hold.
import type { Command } from 'commander';
import { readCheckpointHeader, readTensor } from '../checkpoint/checkpoint.js';
import { Checkpoint } from '../checkpoint/open.js';

export function inspectCheckpoint(path: string, opts: { stats?: boolean; json?: boolean } = {}): string {
  const header = readCheckpointHeader(path);
  const tensors = [...header.tensors.entries()].sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const rms = (name: string): number => {
    const x = readTensor(header, name);
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i] * x[i];
    return Math.sqrt(s / Math.max(1, x.length));
  };
  let checkpoint: Checkpoint | null;
  try {
    checkpoint = Checkpoint.examine(header);
  } catch {
    checkpoint = null; // a safetensors file from elsewhere: list its tensors anyway
  }
  const meta = checkpoint?.metadata ?? null;
  if (opts.json) {
    return JSON.stringify(
      {
        file: path,
        metadata: meta ?? header.metadata,
        ...(checkpoint ? { checksums: checkpoint.checksums() } : {}),
        tensors: tensors.map(([name, h]) => ({ name, dtype: h.dtype, shape: h.shape, ...(opts.stats ? { rms: rms(name) } : {}) })),
      },
      null,
      2,
    );
  }
  const lines: string[] = [`${path}`];
  if (meta) {
    lines.push(`step ${meta.step}  lr ${meta.lr}  convention ${meta.convention}  format ${meta.format}`);
    lines.push(`checksums ${checkpoint!.checksums()}`);
    lines.push(`data ${JSON.stringify(meta.data)}`);
    lines.push(`config ${JSON.stringify(meta.config)}`);
  } else {
    lines.push(`metadata ${JSON.stringify(header.metadata)} (not a shardtrain checkpoint)`);
  }
  const width = Math.max(...tensors.map(([n]) => n.length), 6);
  let total = 0;
  lines.push(`${'tensor'.padEnd(width)}  dtype  shape${opts.stats ? '            rms' : ''}`);
  for (const [name, h] of tensors) {
    const n = h.shape.reduce((a, d) => a * d, 1);
    total += n;
    const shape = `[${h.shape.join(', ')}]`;
    lines.push(`${name.padEnd(width)}  ${h.dtype.padEnd(5)}  ${opts.stats ? `${shape.padEnd(16)} ${rms(name).toExponential(3)}` : shape}`);
  }
  lines.push(`${tensors.length} tensors, ${total} floats`);
  return lines.join('\n');
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('list the tensors, shapes, step and config of a checkpoint (.safetensors)')
    .argument('<file>', 'checkpoint file')
    .option('--stats', 'also print each tensor\'s RMS')
    .option('--json', 'print JSON')
    .action((file: string, opts: { stats?: boolean; json?: boolean }) => {
      try {
        process.stdout.write(`${inspectCheckpoint(file, opts)}\n`);
      } catch (err) {
        process.stderr.write(`shardtrain inspect: ${(err as Error).message.split('\n')[0]}\n`);
        process.exitCode = 1;
      }
    });
}
