// Register our kernels into tfjs's kernel registry for the 'wasm' backend, in place of tfjs's own, so that
// every tfjs model (layers, gradients, user code) runs them without a change, and our Sum and Mean gradients
// (gradients.ts: same bits, no JS-filled ones). tfjs's are kept and restored by restoreTfjsKernels(); ours
// call them for what they do not handle. Per thread: tfjs's registries are per module instance, and every
// worker thread loads its own.

import type * as TF from '@tensorflow/tfjs-core';
import { binaryKernels } from './binary-kernels.js';
import { elementwiseKernels } from './elementwise-kernels.js';
import { gatherKernels } from './gather-kernels.js';
import { Gemm } from '../kernels/gemm.js';
import { gradientConfigs } from './gradients.js';
import type { Instances, KernelContext, Tf } from './kernel-context.js';
export { kernelCalls, type KernelCalls } from './kernel-context.js';
import { matMulKernels } from './matmul-kernels.js';
import { Ops } from '../kernels/ops.js';
import { reduceKernels } from './reduce-kernels.js';
import { backendMemory, type WasmBackend } from './wasm-backend.js';
import { resolveFlavor, type SimdFlavor, type SimdPreference } from '../kernels/wasm-modules.js';

export interface WasmKernelOptions {
  /** 'auto' (default): the relaxed-SIMD FMA GEMM when this runtime has it, else the plain one. */
  readonly simd?: SimdPreference;
  /**
   * 'ours' or 'tfjs' (tfjs's own kernels stay: a baseline for benchmarks, a way out should ours misbehave).
   * Default: the environment variable SHARDTRAIN_WASM_KERNELS, else 'ours'. Worker threads inherit it.
   */
  readonly use?: 'ours' | 'tfjs';
}

export interface WasmKernelStatus {
  /** Kernel names now ours on the wasm backend (none when tfjs's own were asked for). */
  readonly kernels: readonly string[];
  readonly flavor: SimdFlavor;
}

const kEnvUse = 'SHARDTRAIN_WASM_KERNELS';
const kSimdChoices: readonly SimdPreference[] = ['auto', 'relaxed', 'plain'];
const kUseChoices: readonly string[] = ['ours', 'tfjs'];

interface Registration {
  readonly tf: Tf;
  readonly flavor: SimdFlavor;
  readonly configs: TF.KernelConfig[];
  /** Per backend object: our instances, or null when its memory cannot be reached (tfjs's kernels run there). */
  readonly instances: WeakMap<object, Instances | null>;
  /** The same instances, to give the GEMM scratch back on restore. */
  readonly created: Instances[];
}

let current: Registration | null = null;
/** tfjs's own kernels, as found before the first registration (never ours). */
const originals = new Map<string, TF.KernelConfig>();
/** tfjs's own gradients of the kernels whose gradient we replace (gradients.ts). */
const originalGradients = new Map<string, TF.GradConfig>();

function instancesFor(reg: Registration, backend: WasmBackend): Instances | null {
  let found = reg.instances.get(backend);
  if (found === undefined) {
    const mem = backendMemory(backend);
    found = mem instanceof Error ? null : { gemm: new Gemm(mem.memory, mem, reg.flavor), ops: new Ops(mem.memory) };
    reg.instances.set(backend, found);
    if (found !== null) reg.created.push(found);
  }
  return found;
}

function original(kernelName: string): TF.KernelConfig {
  const config = originals.get(kernelName);
  if (config === undefined) throw new Error(`tfjs has no wasm kernel ${kernelName} to fall back to`);
  return config;
}

/**
 * Make our kernels the wasm backend's (idempotent; a different `simd` choice re-registers). Call it before
 * or after the backend starts: each kernel binds to a backend on its first call.
 */
export function registerWasmKernels(tf: Tf, options: WasmKernelOptions = {}): WasmKernelStatus {
  const fromEnv = process.env[kEnvUse];
  if (fromEnv !== undefined && !kUseChoices.includes(fromEnv)) throw new RangeError(`${kEnvUse} must be one of ${kUseChoices.join(', ')}, got ${JSON.stringify(fromEnv)}`);
  const o = { simd: 'auto' as SimdPreference, use: (fromEnv ?? 'ours') as 'ours' | 'tfjs', ...options };
  if (!kSimdChoices.includes(o.simd)) throw new RangeError(`options.simd must be one of ${kSimdChoices.join(', ')}, got ${JSON.stringify(o.simd)}`);
  if (!kUseChoices.includes(o.use)) throw new RangeError(`options.use must be one of ${kUseChoices.join(', ')}, got ${JSON.stringify(o.use)}`);
  const flavor = resolveFlavor(o.simd);
  if (o.use === 'tfjs') {
    restoreTfjsKernels(tf);
    return { kernels: [], flavor };
  }
  if (current !== null && current.tf === tf && current.flavor === flavor) return status(current);
  if (current !== null) restoreTfjsKernels(current.tf);
  const reg: Registration = { tf, flavor, configs: [], instances: new WeakMap(), created: [] };
  const ctx: KernelContext = { tf, instancesFor: (backend) => instancesFor(reg, backend), original };
  reg.configs.push(...matMulKernels(ctx), ...reduceKernels(ctx), ...elementwiseKernels(ctx), ...binaryKernels(ctx), ...gatherKernels(ctx));
  for (const config of reg.configs) {
    const theirs = tf.getKernel(config.kernelName, 'wasm');
    if (theirs !== undefined) {
      originals.set(config.kernelName, theirs);
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    tf.registerKernel(config);
  }
  for (const grad of gradientConfigs(tf)) {
    const theirs = tf.getGradient(grad.kernelName);
    if (theirs !== undefined) originalGradients.set(grad.kernelName, theirs);
    tf.registerGradient(grad);
  }
  current = reg;
  return status(reg);
}

/** Put tfjs's own kernels back (no-op when ours are not registered). */
export function restoreTfjsKernels(tf: Tf): void {
  if (current === null || current.tf !== tf) return;
  for (const config of current.configs) {
    tf.unregisterKernel(config.kernelName, 'wasm');
    const theirs = originals.get(config.kernelName);
    if (theirs !== undefined) tf.registerKernel(theirs);
  }
  for (const [name, grad] of originalGradients) {
    tf.unregisterGradient(name);
    tf.registerGradient(grad);
  }
  for (const { gemm } of current.created) gemm.release();
  current = null;
}

function status(reg: Registration): WasmKernelStatus {
  return { kernels: reg.configs.map((c) => c.kernelName), flavor: reg.flavor };
}
