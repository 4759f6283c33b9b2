// The layers on real threads: test/nn-mini-gpt.ts's step (every nn layer, forward and backward, the tied
// head's dwte accumulated by the encoder) run by a team of 2 and of 3 worker threads meeting at
// parallel/team.ts barriers over one shared arena gives the bits of runSerial with one member, in every
// buffer. A phase that read what another member of the same phase writes would show here as a difference
// (or not, by luck of timing: the serial 1-3 member tests pin the arithmetic, this pins the concurrency).

import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import { Matmul } from '../src/kernels/matmul.js';
import { resolveFlavor } from '../src/kernels/wasm-modules.js';
import { Program, runSerial } from '../src/nn/program.js';
import { allocateTeams } from '../src/parallel/team.js';
import { bits } from './nn-arena.js';
import { buildMiniGpt, layout, type MiniGpt, sizes } from './nn-mini-gpt.js';
import { freshSeed, rng } from './reference.js';
import { createKernels } from '../src/nn/kernels.js';

const seed = freshSeed();
const kMaxMembers = 3;

function memoryFor(d: MiniGpt, scratchBytes: number): { memory: WebAssembly.Memory; base: number } {
  const base = kMaxMembers * scratchBytes;
  const pages = Math.ceil((layout(d, base).end + 65536) / 65536);
  return { memory: new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }), base };
}

/** Random parameters and ids, NaN everywhere else (activations and gradients are written before they are read). */
function fill(memory: WebAssembly.Memory, d: MiniGpt, base: number): void {
  const next = rng(seed);
  const f32 = new Float32Array(memory.buffer);
  const i32 = new Int32Array(memory.buffer);
  const { at } = layout(d, base);
  for (const [name, floats] of Object.entries(sizes(d))) {
    const p = at[name] / 4;
    if (name === 'tokens' || name === 'targets') for (let i = 0; i < floats; i++) i32[p + i] = Math.floor(next() * d.V);
    else if (['wte', 'wpe', 'fcw', 'fcb', 'projw', 'projb', 'ln1b', 'lnfb'].includes(name)) for (let i = 0; i < floats; i++) f32[p + i] = (next() * 2 - 1) * 0.3;
    else if (name === 'ln1g' || name === 'lnfg') for (let i = 0; i < floats; i++) f32[p + i] = 1 + (next() * 2 - 1) * 0.2;
    else f32.fill(Number.NaN, p, p + floats);
  }
}

describe(`nn layers on a team of worker threads (seed ${seed})`, function () {
  this.timeout(120000);
  const d: MiniGpt = { B: 3, T: 5, C: 40, V: 67 };
  const scratchBytes = (new Matmul(new WebAssembly.Memory({ initial: 1 }), resolveFlavor('auto')).maxScratchBytes + 63) & ~63;

  for (const members of [2, 3]) {
    it(`a mini GPT's step (every layer, forward and backward) on ${members} threads: the bits of one member on one thread, in every buffer`, async () => {
      const serial = memoryFor(d, scratchBytes);
      fill(serial.memory, d, serial.base);
      const team = memoryFor(d, scratchBytes);
      new Uint8Array(team.memory.buffer).set(new Uint8Array(serial.memory.buffer));
      const k = createKernels(serial.memory, resolveFlavor('auto'), () => 0, scratchBytes);
      const p = new Program();
      buildMiniGpt(p, k, d, layout(d, serial.base).at);
      runSerial(p, 1);

      const teamBuffer = allocateTeams(1);
      const results = await Promise.all(Array.from({ length: members }, (_, member) => new Promise<{ ok: boolean; error?: string }>((resolve, reject) => {
        const w = new Worker(new URL('./fixtures/nn-team-worker.js', import.meta.url), {
          workerData: { memory: team.memory, team: teamBuffer, member, members, dims: d, scratchBytes, base: team.base },
        });
        w.once('message', (m) => {
          resolve(m);
          void w.terminate();
        });
        w.once('error', reject);
      })));
      for (const r of results) expect(r.error, 'a member failed').to.equal(undefined);
      const { at } = layout(d, serial.base);
      for (const [name, floats] of Object.entries(sizes(d))) {
        const view = (m: WebAssembly.Memory) => new Float32Array(m.buffer, at[name], floats);
        expect(bits(view(team.memory)), name).to.equal(bits(view(serial.memory)));
        if (name.startsWith('d')) expect(view(serial.memory).some(Number.isNaN), `${name} is all written`).to.equal(false);
      }
    });
  }
});
