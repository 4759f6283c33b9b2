// The parts of tfjs-backend-wasm 4.x (BackendWasm, not exported as a type we can import without loading it)
// that our kernels use, checked once per backend object. Everything here is public on the object but not in
// tfjs's typings: the emscripten module (`wasm`), its exports (`asm`, where the linear memory is), its
// allocator, and the per-tensor table (`dataIdMap`) that holds each tensor's byte offset in that memory.

import type * as TF from '@tensorflow/tfjs-core';

interface EmscriptenModule {
  readonly asm?: Readonly<Record<string, unknown>>;
  readonly wasmExports?: Readonly<Record<string, unknown>>;
  _malloc(bytes: number): number;
  _free(address: number): void;
}

interface TensorRecord {
  readonly memoryOffset: number;
}

export interface WasmBackend {
  readonly wasm: EmscriptenModule;
  readonly dataIdMap: { get(dataId: TF.DataId): TensorRecord };
  makeOutput(shape: number[], dtype: TF.DataType): TF.TensorInfo;
  disposeData(dataId: TF.DataId, force?: boolean): boolean;
  /** One more tensor refers to this data (disposeData frees it when the last one goes). */
  incRef(dataId: TF.DataId): void;
}

/** Byte offset of a tensor's data in the backend's memory. */
export function addressOf(backend: WasmBackend, info: TF.TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset >>> 0;
}

/**
 * The backend's linear memory and allocator, or the reason they cannot be reached (then our kernels hand
 * every call on that backend to tfjs's own).
 */
export function backendMemory(backend: unknown): { memory: WebAssembly.Memory; malloc(bytes: number): number; free(address: number): void } | Error {
  const b = backend as Partial<WasmBackend> | null;
  const wasm = b?.wasm;
  if (!wasm || typeof wasm._malloc !== 'function' || typeof wasm._free !== 'function' || typeof b?.dataIdMap?.get !== 'function') {
    return new Error('the tfjs wasm backend has no emscripten module with _malloc/_free and a dataIdMap (tfjs-backend-wasm changed)');
  }
  // emscripten ≤ 3.1.41 names the instance's exports `asm`, later versions `wasmExports`.
  const memory = wasm.asm?.memory ?? wasm.wasmExports?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return new Error("the tfjs wasm backend's WebAssembly.Memory is not reachable (no asm.memory or wasmExports.memory)");
  return { memory, malloc: (bytes) => wasm._malloc(bytes), free: (address) => wasm._free(address) };
}
