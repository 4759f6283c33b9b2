// The tfjs wasm backend's abort line: emscripten binds its error printer to console.warn while the backend
// starts, and prints `Aborted(…)` on a line of its own before the RuntimeError that carries the same words.
// startWasmQuietly gives it a printer that drops that line and passes every other on, and puts console.warn back.
import { expect } from 'chai';
import { startWasmQuietly } from '../src/tfjs/tf.js';

describe('tfjs: the wasm backend starts without its abort line on stderr', () => {
  it("the printer bound while the backend starts drops 'Aborted(…)' lines, passes others, and console.warn is restored", async () => {
    const original = console.warn;
    const seen: unknown[][] = [];
    console.warn = (...args: unknown[]) => void seen.push(args);
    const during = console.warn;
    let bound: ((...a: unknown[]) => void) | null = null;
    try {
      const ok = await startWasmQuietly({
        setBackend: async () => {
          // what emscripten does when the module is instantiated: var err = console.warn.bind(console)
          bound = console.warn.bind(console);
          return true;
        },
      });
      expect(ok).to.equal(true);
      expect(console.warn, 'console.warn is put back').to.equal(during);
      bound!('Aborted(OOM). Build with -sASSERTIONS for more info.');
      bound!('a real warning', 42);
      expect(seen).to.deep.equal([['a real warning', 42]]);
    } finally {
      console.warn = original;
    }
  });

  it('console.warn is put back when the backend fails to start', async () => {
    const before = console.warn;
    let error: Error | null = null;
    await startWasmQuietly({ setBackend: async () => { throw new Error('no wasm'); } }).catch((e: Error) => (error = e));
    expect(error!.message).to.equal('no wasm');
    expect(console.warn).to.equal(before);
  });
});
