// Our WebAssembly kernel modules (built from src/kernels/wasm/*.wat.mjs by scripts/build-wasm.mjs): compiled once
// per thread, instantiated once per memory. Each module imports its memory, so an instance over the tfjs wasm
// backend's own WebAssembly.Memory addresses tensors in place (no copies in or out).
//
// Relaxed SIMD (f32x4.relaxed_madd, one fused multiply-add) is on by default from V8 11.4 (Node 22); Node 20's
// V8 11.3 has it behind --experimental-wasm-relaxed-simd, set before the module is compiled. The flag is set
// only where the runtime rejects the relaxed binary and its V8 still has the flag: a V8 without it prints
// "unrecognized flag" on stderr (Node 24, once per thread), noise the one-line error contract forbids. V8
// flags are process-wide, so setting it in any thread covers the worker threads too; each thread still asks
// (idempotent) so that it never depends on which thread loaded first. When the runtime rejects the relaxed
// binary, the plain one (f32x4.mul + add) runs.

import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

/** Which GEMM binary: the fused multiply-add one when the runtime validates it, or the plain one. */
export type SimdFlavor = 'relaxed' | 'plain';

/** What the caller asks for: 'auto' picks relaxed when this runtime has it. */
export type SimdPreference = SimdFlavor | 'auto';

// `<name>-shared`: the same module importing a shared memory (scripts/build-wasm.mjs sharedTwin); instantiate()
// takes it for a shared memory, such as the engine's arenas.
const kFiles: Readonly<Record<string, URL>> = Object.freeze({
  'gemm-relaxed': new URL('./wasm/gemm-relaxed.wasm', import.meta.url),
  gemm: new URL('./wasm/gemm.wasm', import.meta.url),
  'gemm-relaxed-shared': new URL('./wasm/gemm-relaxed-shared.wasm', import.meta.url),
  'gemm-shared': new URL('./wasm/gemm-shared.wasm', import.meta.url),
  nn: new URL('./wasm/nn.wasm', import.meta.url),
  'nn-shared': new URL('./wasm/nn-shared.wasm', import.meta.url),
  ops: new URL('./wasm/ops.wasm', import.meta.url),
  'ops-shared': new URL('./wasm/ops-shared.wasm', import.meta.url),
  map: new URL('./wasm/map.wasm', import.meta.url),
  'map-shared': new URL('./wasm/map-shared.wasm', import.meta.url),
  binary: new URL('./wasm/binary.wasm', import.meta.url),
  attention: new URL('./wasm/attention.wasm', import.meta.url),
  'attention-shared': new URL('./wasm/attention-shared.wasm', import.meta.url),
});

export type ModuleName = keyof typeof kFiles;

let flagSet = false;
const compiled = new Map<string, WebAssembly.Module | Error>();

/** V8 versions that have relaxed SIMD only behind the experimental flag (9.x through 11.3). */
export function relaxedSimdNeedsFlag(v8Version = process.versions.v8): boolean {
  const [major, minor] = v8Version.split('.').map(Number);
  return major < 11 || (major === 11 && minor < 4);
}

/** Validate `bytes`, setting V8's relaxed-SIMD flag first only where that V8 needs and knows it. */
function validateRelaxed(bytes: Uint8Array): boolean {
  if (WebAssembly.validate(bytes)) return true;
  if (flagSet || !relaxedSimdNeedsFlag()) return false;
  flagSet = true;
  setFlagsFromString('--experimental-wasm-relaxed-simd');
  return WebAssembly.validate(bytes);
}

/** The compiled module, or the reason it cannot run here (kept, so the failure is reported, not retried). */
export function compileModule(name: ModuleName): WebAssembly.Module | Error {
  let mod = compiled.get(name);
  if (mod === undefined) {
    try {
      const bytes = readFileSync(kFiles[name]);
      if (!(name.includes('-relaxed') ? validateRelaxed(bytes) : WebAssembly.validate(bytes))) throw new Error(`this runtime rejects ${name}.wasm (WebAssembly SIMD${name.includes('-relaxed') ? ' or relaxed SIMD' : ''} missing)`);
      mod = new WebAssembly.Module(bytes);
    } catch (err) {
      mod = err instanceof Error ? err : new Error(String(err));
    }
    compiled.set(name, mod);
  }
  return mod;
}

/** The flavor a preference resolves to on this runtime ('relaxed' asked for but missing is an error). */
export function resolveFlavor(preference: SimdPreference): SimdFlavor {
  if (preference === 'plain') return 'plain';
  const relaxed = compileModule('gemm-relaxed');
  if (!(relaxed instanceof Error)) return 'relaxed';
  if (preference === 'relaxed') throw new Error(`relaxed SIMD was asked for but is unavailable: ${relaxed.message}`);
  return 'plain';
}

/** Instantiate `name` over `memory` (which it imports as env.memory), as its shared twin when the memory is shared. */
export function instantiate(name: ModuleName, memory: WebAssembly.Memory): WebAssembly.Exports {
  const twin = `${name}-shared`;
  const mod = compileModule(memory.buffer instanceof SharedArrayBuffer && twin in kFiles ? (twin as ModuleName) : name);
  if (mod instanceof Error) throw mod;
  return new WebAssembly.Instance(mod, { env: { memory } }).exports;
}
