// The optimizer's state dict (torch's `state_dict()` plus the parameters): its shape, and the checks a dict
// passes before loadStateDict() writes anything.

import type { TensorPlacement } from '../memory/layout.js';
import { stateNamesFor } from '../memory/shard-states.js';

/**
 * Everything a step depends on, by tensor name (torch's `optimizer.state_dict()` plus the parameters):
 * `stateDict()` returns copies, `loadStateDict()` copies them back in.
 */
export interface OptimizerStateDict {
  /** Completed steps (globalStep). */
  readonly step: number;
  readonly params: Readonly<Record<string, Float32Array>>;
  /** Adam's first and second moments. */
  readonly m: Readonly<Record<string, Float32Array>>;
  readonly v: Readonly<Record<string, Float32Array>>;
  /** AMSGrad's running maximum of v; present exactly when amsgrad is on. */
  readonly vmax?: Readonly<Record<string, Float32Array>>;
}

/** Throw, naming the state, tensor and element, unless `dict` fits these tensors exactly with finite values. */
export function checkStateDict(dict: OptimizerStateDict, tensors: readonly TensorPlacement[], amsgrad: boolean): void {
  const names = new Set(tensors.map((t) => t.name));
  if (dict === null || typeof dict !== 'object') throw new TypeError(`state dict must be an object {step, params, m, v}, got ${String(dict)}`);
  if (!Number.isSafeInteger(dict.step) || dict.step < 0) throw new RangeError(`state dict: step must be a non-negative integer, got ${String(dict.step)}`);
  if (amsgrad !== (dict.vmax !== undefined)) {
    throw new RangeError(`state dict: ${amsgrad ? 'vmax is missing (amsgrad is on)' : 'has vmax, but amsgrad is off'}`);
  }
  for (const state of stateNamesFor(amsgrad)) {
    const values = dict[state];
    if (values === null || typeof values !== 'object') throw new TypeError(`state dict: ${state} must be an object of named Float32Arrays, got ${String(values)}`);
    for (const name of Object.keys(values)) {
      if (!names.has(name)) throw new RangeError(`state dict: ${state}["${name}"] is not a tensor of this optimizer`);
    }
    for (const { name, size } of tensors) {
      const x = values[name];
      if (!(x instanceof Float32Array)) throw new TypeError(`state dict: ${state}["${name}"] must be a Float32Array, got ${x === undefined ? 'nothing' : String(x)}`);
      if (x.length !== size) throw new RangeError(`state dict: ${state}["${name}"] has ${x.length} elements, expected ${size}`);
      for (let i = 0; i < x.length; i++) {
        if (!Number.isFinite(x[i])) throw new RangeError(`state dict: ${state}["${name}"][${i}] is ${x[i]}: states must be finite`);
      }
    }
  }
}
