// The file side of starting the GPT from GPT-2's weights: a `model.safetensors` in Hugging Face's layout
// (gpt2, gpt2-medium, …) read into shardtrain's GPT tensors.
//   wte.weight [V, C], wpe.weight [T, C]                      → wte/embeddings, wpe/embeddings
//   h.<i>.ln_1.{weight,bias} [C]                              → block_<i>/layer_norm_1/{gamma,beta}
//   h.<i>.attn.c_attn.{weight [C, 3C], bias}                  → block_<i>/attn/qkv/{kernel,bias}
//   h.<i>.attn.c_proj.{weight [C, C], bias}                   → block_<i>/attn/proj/{kernel,bias}
//   h.<i>.ln_2.*, h.<i>.mlp.c_fc.* [C, 4C], h.<i>.mlp.c_proj.* [4C, C] → layer_norm_2, mlp/fc, mlp/proj
//   ln_f.{weight,bias}                                        → layer_norm_f/{gamma,beta}
// GPT-2's Conv1D stores its weight as [in, out], as our kernels are: nothing is transposed. Every name may
// carry the `transformer.` prefix (a GPT2LMHeadModel's state dict) or none (the original `gpt2` upload).
// Ignored: the h.<i>.attn.bias / attn.masked_bias buffers (the causal mask) and lm_head.weight when it
// equals wte.weight (the tied head; an untied one is refused). Float32 files are read as they are; float16
// and bfloat16 files are widened to float32 exactly (every such value is a float32).
// Every name and shape is checked against the model's tensor list before any value is read.

import { closeSync, openSync } from 'node:fs';
import type { TensorSpec } from '../memory/layout.js';
import { tensorParts, type TensorView } from '../memory/tensor-views.js';
import { oneLine } from '../util/one-line.js';
import { assertLittleEndian, kDtypeBytes, kIoChunkBytes, readFully, readSafetensorsHeader, SafetensorsError, type HeaderEntry, type SafetensorsHeader } from './safetensors.js';

export class Gpt2ImportError extends Error {
  constructor(path: string, message: string) {
    super(oneLine(`GPT-2 checkpoint ${path}: ${message}`));
    this.name = 'Gpt2ImportError';
  }
}

const kFloatDtypes = ['F32', 'F16', 'BF16'] as const;
type FloatDtype = (typeof kFloatDtypes)[number];

const kBlockParts: Readonly<Record<string, string>> = Object.freeze({
  'ln_1.weight': 'layer_norm_1/gamma',
  'ln_1.bias': 'layer_norm_1/beta',
  'attn.c_attn.weight': 'attn/qkv/kernel',
  'attn.c_attn.bias': 'attn/qkv/bias',
  'attn.c_proj.weight': 'attn/proj/kernel',
  'attn.c_proj.bias': 'attn/proj/bias',
  'ln_2.weight': 'layer_norm_2/gamma',
  'ln_2.bias': 'layer_norm_2/beta',
  'mlp.c_fc.weight': 'mlp/fc/kernel',
  'mlp.c_fc.bias': 'mlp/fc/bias',
  'mlp.c_proj.weight': 'mlp/proj/kernel',
  'mlp.c_proj.bias': 'mlp/proj/bias',
});
const kTopLevel: Readonly<Record<string, string>> = Object.freeze({
  'wte.weight': 'wte/embeddings',
  'wpe.weight': 'wpe/embeddings',
  'ln_f.weight': 'layer_norm_f/gamma',
  'ln_f.bias': 'layer_norm_f/beta',
});
/** Buffers of GPT2Attention (the causal mask, and -1e4 in older transformers): not parameters. */
const kIgnoredBlockParts = new Set(['attn.bias', 'attn.masked_bias']);

/**
 * shardtrain's name for a GPT-2 tensor name without its prefix; null for a buffer that is not a parameter;
 * undefined for a name GPT-2 does not have.
 */
export function gpt2TensorName(name: string): string | null | undefined {
  if (Object.hasOwn(kTopLevel, name)) return kTopLevel[name];
  const m = /^h\.(0|[1-9][0-9]*)\.(.+)$/.exec(name);
  if (!m) return undefined;
  if (kIgnoredBlockParts.has(m[2])) return null;
  return Object.hasOwn(kBlockParts, m[2]) ? `block_${m[1]}/${kBlockParts[m[2]]}` : undefined;
}

/** Where one of our tensors comes from in the file. */
export interface Gpt2Source {
  readonly fileName: string;
  readonly dtype: FloatDtype;
  readonly entry: HeaderEntry;
}

/** The model's sizes, as the file's shapes give them (heads are not in the weights: config.json has n_head). */
export interface Gpt2Dims {
  readonly vocab: number;
  readonly contextLength: number;
  readonly embedding: number;
  readonly layers: number;
  readonly mlpHidden: number;
}

const show = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

export class Gpt2Checkpoint {
  readonly path: string;
  /** 'transformer.' or ''. */
  readonly prefix: string;
  readonly dims: Gpt2Dims;
  /** For each of the model's tensors, where it is in the file. */
  readonly sources: ReadonlyMap<string, Gpt2Source>;
  readonly #header: SafetensorsHeader;

  private constructor(header: SafetensorsHeader, prefix: string, dims: Gpt2Dims, sources: Map<string, Gpt2Source>) {
    this.path = header.path;
    this.#header = header;
    this.prefix = prefix;
    this.dims = dims;
    this.sources = sources;
  }

  /**
   * Read the header and map every tensor onto `tensors` (the GPT's list): a tensor the file has that the
   * model lacks, one the model has that the file lacks, or a shape that differs is refused here, naming it.
   */
  static open(path: string, tensors: readonly TensorSpec[]): Gpt2Checkpoint {
    let header: SafetensorsHeader;
    try {
      header = readSafetensorsHeader(path, Object.keys(kDtypeBytes));
    } catch (err) {
      if (err instanceof SafetensorsError) throw new Gpt2ImportError(err.path, err.detail);
      throw err;
    }
    const names = [...header.tensors.keys()];
    const prefix = names.some((n) => n.startsWith('transformer.')) ? 'transformer.' : '';
    const expected = new Map(tensors.map((t) => [t.name, t]));
    const sources = new Map<string, Gpt2Source>();
    let head: HeaderEntry | null = null;
    for (const [fileName, entry] of header.tensors) {
      if (fileName === 'lm_head.weight') {
        head = entry;
        continue;
      }
      if (!fileName.startsWith(prefix)) throw new Gpt2ImportError(path, `tensor "${fileName}" lacks the "${prefix}" prefix that the file's other tensors have`);
      const ours = gpt2TensorName(fileName.slice(prefix.length));
      if (ours === undefined) throw new Gpt2ImportError(path, `tensor "${fileName}" is not one of GPT-2's`);
      if (ours === null) continue;
      const t = expected.get(ours);
      if (!t) throw new Gpt2ImportError(path, `tensor "${fileName}" (${ours}) is not in the model: the file has more layers or another layout`);
      if (entry.shape.length !== t.shape.length || entry.shape.some((d, i) => d !== t.shape[i])) {
        throw new Gpt2ImportError(path, `tensor "${fileName}" (${ours}) has shape ${show(entry.shape)}, the model has ${show(t.shape)}`);
      }
      if (!(kFloatDtypes as readonly string[]).includes(entry.dtype)) throw new Gpt2ImportError(path, `tensor "${fileName}" is ${entry.dtype}; float32, float16 and bfloat16 are read`);
      sources.set(ours, { fileName, dtype: entry.dtype as FloatDtype, entry });
    }
    for (const t of tensors) {
      if (!sources.has(t.name)) throw new Gpt2ImportError(path, `the model's tensor ${t.name} is not in the file${t.name === 'lm_head/kernel' ? ' (GPT-2 ties its head to wte: use a tied head)' : ''}`);
    }
    const wte = sources.get('wte/embeddings')!;
    if (head !== null) checkTiedHead(header, head, wte);
    const fc = sources.get('block_0/mlp/fc/kernel');
    const dims: Gpt2Dims = {
      vocab: wte.entry.shape[0],
      contextLength: sources.get('wpe/embeddings')?.entry.shape[0] ?? 0,
      embedding: wte.entry.shape[1],
      layers: [...sources.keys()].filter((n) => /^block_\d+\/layer_norm_1\/gamma$/.test(n)).length,
      mlpHidden: fc?.entry.shape[1] ?? 0,
    };
    return new Gpt2Checkpoint(header, prefix, dims, sources);
  }

  /** Read every tensor into the model's views (float32; float16 and bfloat16 widened). */
  readInto(views: Readonly<Record<string, TensorView>>): void {
    const fd = openSync(this.path, 'r');
    try {
      for (const [name, source] of this.sources) {
        const view = views[name];
        if (view === undefined) throw new Gpt2ImportError(this.path, `no view given for ${name}`);
        readFloats(fd, this.#header, source, tensorParts(view));
      }
    } finally {
      closeSync(fd);
    }
  }

  /** One of the model's tensors, read into a new array. */
  read(name: string): Float32Array {
    const source = this.sources.get(name);
    if (!source) throw new Gpt2ImportError(this.path, `no tensor for ${name}`);
    const out = new Float32Array(source.entry.shape.reduce((a, d) => a * d, 1));
    const fd = openSync(this.path, 'r');
    try {
      readFloats(fd, this.#header, source, [out]);
    } finally {
      closeSync(fd);
    }
    return out;
  }
}

/** lm_head.weight may only be the tied head: the same shape, dtype and bytes as wte.weight. */
function checkTiedHead(header: SafetensorsHeader, head: HeaderEntry, wte: Gpt2Source): void {
  const { path } = header;
  if (head.dtype !== wte.dtype || head.shape.length !== 2 || head.shape[0] !== wte.entry.shape[0] || head.shape[1] !== wte.entry.shape[1]) {
    throw new Gpt2ImportError(path, `lm_head.weight (${head.dtype} ${show(head.shape)}) is not the tied head (wte.weight is ${wte.dtype} ${show(wte.entry.shape)}); an untied head is not read`);
  }
  const fd = openSync(path, 'r');
  try {
    const bytes = head.data_offsets[1] - head.data_offsets[0];
    const a = Buffer.alloc(Math.min(kIoChunkBytes, bytes));
    const b = Buffer.alloc(a.length);
    for (let at = 0; at < bytes; at += a.length) {
      const n = Math.min(a.length, bytes - at);
      readFully(fd, path, a.subarray(0, n), header.dataStart + head.data_offsets[0] + at);
      readFully(fd, path, b.subarray(0, n), header.dataStart + wte.entry.data_offsets[0] + at);
      if (!a.subarray(0, n).equals(b.subarray(0, n))) throw new Gpt2ImportError(path, 'lm_head.weight differs from wte.weight: an untied head, which is not read (shardtrain\'s GPT-2 ties its head to wte)');
    }
  } finally {
    closeSync(fd);
  }
}

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** An IEEE half's bits as a float32 (exact: every half is a float32). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal (and zero)
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** A tensor's values into `parts` (in order), converted to float32 piece by piece. */
function readFloats(fd: number, header: SafetensorsHeader, source: Gpt2Source, parts: readonly Float32Array[]): void {
  assertLittleEndian();
  let pos = header.dataStart + source.entry.data_offsets[0];
  if (source.dtype === 'F32') {
    for (const part of parts) {
      readFully(fd, header.path, new Uint8Array(part.buffer, part.byteOffset, part.byteLength), pos);
      pos += part.byteLength;
    }
    return;
  }
  const halves = new Uint16Array(Math.min(kIoChunkBytes / 2, Math.max(1, ...parts.map((p) => p.length))));
  const bytes = new Uint8Array(halves.buffer);
  for (const part of parts) {
    for (let at = 0; at < part.length; at += halves.length) {
      const n = Math.min(halves.length, part.length - at);
      readFully(fd, header.path, bytes.subarray(0, 2 * n), pos);
      pos += 2 * n;
      if (source.dtype === 'BF16') {
        // bfloat16 is the top half of a float32's bits.
        for (let i = 0; i < n; i++) {
          f32Bits[0] = halves[i] << 16;
          part[at + i] = f32[0];
        }
      } else {
        for (let i = 0; i < n; i++) part[at + i] = halfToFloat(halves[i]);
      }
    }
  }
}
