// tfjs kernels BatchMatMul (tf.matMul, and every matmul of a gradient) and _FusedMatMul (tf.fused.matMul, which
// tfjs-layers' Dense calls with its bias and activation) for the wasm backend, on our GEMM. All four transpose
// cases, any batch dimensions with broadcasting, bias of any broadcastable shape, every activation tfjs fuses.
// What runs inside the GEMM: bias per column or scalar, linear/relu/relu6/leakyrelu. What runs after it, with
// tfjs's own wasm kernels on our output: a bias of any other shape (Add), prelu, elu, sigmoid. Non-float32
// inputs and unknown activations go to tfjs's own kernel unchanged.

import type * as TF from '@tensorflow/tfjs-core';
import type { GemmActivation } from '../kernels/gemm.js';
import { runOriginal, sizeOf, wasmKernel, type KernelArgs, type KernelContext, type Tf } from './kernel-context.js';
import { addressOf } from './wasm-backend.js';

/** Where the matrices of one matmul call are: shapes, and each output batch's element offsets into a and b. */
export interface MatMulGeometry {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly outShape: number[];
  /** Output batches: C_t = op(A_aOffsets[t]) · op(B_bOffsets[t]), element offsets (not bytes). */
  readonly batches: number;
  readonly aOffsets: readonly number[];
  readonly bOffsets: readonly number[];
}

/**
 * The geometry of a·b under tfjs's matMul rules (a rank ≥ 2, b rank ≥ 2, leading dimensions broadcast). A B
 * shared by every batch, with A not transposed, folds into one m·batches × k GEMM (a dense layer on 3-D input).
 */
export function matMulGeometry(tf: Tf, aShape: readonly number[], bShape: readonly number[], transposeA: boolean, transposeB: boolean): MatMulGeometry {
  if (aShape.length < 2 || bShape.length < 2) throw new Error(`MatMul: a and b must have rank ≥ 2, got [${aShape}] and [${bShape}]`);
  const ra = aShape.length;
  const rb = bShape.length;
  const k = transposeA ? aShape[ra - 2] : aShape[ra - 1];
  const m = transposeA ? aShape[ra - 1] : aShape[ra - 2];
  const kb = transposeB ? bShape[rb - 1] : bShape[rb - 2];
  const n = transposeB ? bShape[rb - 2] : bShape[rb - 1];
  if (k !== kb) throw new Error(`MatMul: inner dimensions differ: a [${aShape}]${transposeA ? 'ᵀ' : ''} has ${k}, b [${bShape}]${transposeB ? 'ᵀ' : ''} has ${kb}`);
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const batchShape = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  const outShape = [...batchShape, m, n];
  const batches = sizeOf(batchShape);
  const bCount = sizeOf(bBatch);
  const aCount = sizeOf(aBatch);
  if (batches > 1 && bCount === 1 && aCount === batches && !transposeA) {
    return { m: m * batches, n, k, outShape, batches: 1, aOffsets: [0], bOffsets: [0] };
  }
  // Element strides of each batch dimension of the output in a and b (0 where that operand broadcasts).
  const strides = (shape: number[], size: number): number[] => {
    const out = new Array<number>(batchShape.length).fill(0);
    let stride = size;
    for (let d = shape.length - 1, o = batchShape.length - 1; d >= 0; d--, o--) {
      if (shape[d] !== 1) out[o] = stride;
      stride *= shape[d];
    }
    return out;
  };
  const sa = strides(aBatch, m * k);
  const sb = strides(bBatch, k * n);
  const aOffsets: number[] = [];
  const bOffsets: number[] = [];
  const index = new Array<number>(batchShape.length).fill(0);
  for (let t = 0; t < batches; t++) {
    let ao = 0;
    let bo = 0;
    for (let d = 0; d < index.length; d++) {
      ao += index[d] * sa[d];
      bo += index[d] * sb[d];
    }
    aOffsets.push(ao);
    bOffsets.push(bo);
    for (let d = index.length - 1; d >= 0 && ++index[d] === batchShape[d]; d--) index[d] = 0;
  }
  return { m, n, k, outShape, batches, aOffsets, bOffsets };
}

/** tfjs's default slope for fused leakyrelu (tf.fused.matMul's leakyreluAlpha). */
const kLeakyReluAlpha = 0.2;
const kInKernel = new Set(['linear', 'relu', 'relu6', 'leakyrelu']);
const kAfterKernel: Readonly<Record<string, string>> = Object.freeze({ relu: 'Relu', relu6: 'Relu6', leakyrelu: 'LeakyRelu', prelu: 'Prelu', elu: 'Elu', sigmoid: 'Sigmoid' });

interface MatMulInputs {
  readonly a: TF.TensorInfo;
  readonly b: TF.TensorInfo;
  readonly bias?: TF.TensorInfo | null;
  readonly preluActivationWeights?: TF.TensorInfo | null;
}

interface MatMulAttrs {
  readonly transposeA: boolean;
  readonly transposeB: boolean;
  readonly activation?: string;
  readonly leakyreluAlpha?: number;
}

/** How a bias of this shape fits the GEMM: one value per column, one value, or not at all (added afterwards). */
function biasFit(bias: TF.TensorInfo, n: number): 'n' | 1 | null {
  const size = sizeOf(bias.shape);
  if (size === 1) return 1;
  const last = bias.shape[bias.shape.length - 1];
  return last === n && size === n ? 'n' : null;
}

function runMatMul(ctx: KernelContext, kernelName: string, args: KernelArgs<MatMulInputs, MatMulAttrs>): TF.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { a, b } = inputs;
  const activation = attrs.activation ?? 'linear';
  const gemm = a.dtype === 'float32' && b.dtype === 'float32' && (activation === 'linear' || activation in kAfterKernel) ? ctx.instancesFor(backend)?.gemm : undefined;
  if (gemm === undefined) return runOriginal(ctx, kernelName, args);
  const g = matMulGeometry(ctx.tf, a.shape, b.shape, attrs.transposeA, attrs.transposeB);
  const bias = inputs.bias ?? null;
  const fit = bias === null ? null : biasFit(bias, g.n);
  const biasInKernel = bias !== null && fit !== null;
  const actInKernel = (bias === null || biasInKernel) && kInKernel.has(activation);
  const out = backend.makeOutput(g.outShape, 'float32');
  const aBase = addressOf(backend, a);
  const bBase = addressOf(backend, b);
  const cBase = addressOf(backend, out);
  for (let t = 0; t < g.batches; t++) {
    gemm.run({
      m: g.m, n: g.n, k: g.k,
      a: aBase + 4 * g.aOffsets[t], transposeA: attrs.transposeA,
      b: bBase + 4 * g.bOffsets[t], transposeB: attrs.transposeB,
      c: cBase + 4 * t * g.m * g.n,
      bias: biasInKernel ? { address: addressOf(backend, bias), size: fit } : undefined,
      activation: actInKernel ? (activation as GemmActivation) : 'linear',
      alpha: attrs.leakyreluAlpha ?? kLeakyReluAlpha,
    });
  }
  let result = out;
  const then = (name: string, extra: TF.NamedTensorInfoMap, kernelAttrs: TF.NamedAttrMap): void => {
    const next = ctx.tf.getKernel(name, 'wasm');
    if (next === undefined) throw new Error(`_FusedMatMul: kernel ${name} is not registered for the wasm backend`);
    const produced = next.kernelFunc({ inputs: { ...extra }, backend: backend as unknown as TF.KernelBackend, attrs: kernelAttrs }) as TF.TensorInfo;
    backend.disposeData(result.dataId);
    result = produced;
  };
  if (bias !== null && !biasInKernel) then('Add', { a: result, b: bias }, {});
  if (!actInKernel && activation !== 'linear') {
    const inputsOf: TF.NamedTensorInfoMap = activation === 'prelu' ? { x: result, alpha: inputs.preluActivationWeights as TF.TensorInfo } : { x: result };
    then(kAfterKernel[activation], inputsOf, activation === 'leakyrelu' ? { alpha: attrs.leakyreluAlpha ?? kLeakyReluAlpha } : {});
  }
  return result;
}

/** The two kernel configs, bound to a registration's context. */
export function matMulKernels(ctx: KernelContext): TF.KernelConfig[] {
  return ['BatchMatMul', '_FusedMatMul'].map((name) => wasmKernel<MatMulInputs, MatMulAttrs>(ctx, name, (args) => runMatMul(ctx, name, args)));
}
