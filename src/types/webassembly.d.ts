// The slice of the WebAssembly JS API that shardtrain uses. TypeScript ships these in lib.dom only, and
// pulling the whole DOM into a Node library would declare globals Node does not have.
declare namespace WebAssembly {
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  class Module {
    constructor(bytes: BufferSource);
  }
  /** A trap (out-of-bounds access, unreachable, …) inside wasm code. */
  class RuntimeError extends Error {}
  type ExportValue = Function | Memory | Global;
  class Global {
    value: unknown;
  }
  type Exports = Record<string, ExportValue>;
  type ModuleImports = Record<string, ExportValue | number>;
  type Imports = Record<string, ModuleImports>;
  class Instance {
    constructor(module: Module, imports?: Imports);
    readonly exports: Exports;
  }
  interface WebAssemblyInstantiatedSource {
    module: Module;
    instance: Instance;
  }
  function validate(bytes: BufferSource): boolean;
  function compile(bytes: BufferSource): Promise<Module>;
  function instantiate(module: Module, imports?: Imports): Promise<Instance>;
  type BufferSource = ArrayBufferView | ArrayBuffer;
}
