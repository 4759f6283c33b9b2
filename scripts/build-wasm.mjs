#!/usr/bin/env node
// Build step: compile the hand-written WebAssembly text kernels (src/optim/wasm/*.wat) into binaries next to
// the compiled JS (dist/src/optim/wasm/*.wasm) with wabt, the WebAssembly Binary Toolkit's own parser and
// validator (an npm devDependency, so the build needs nothing outside the npm registry). Plain .mjs so it
// runs before tsc. Fails loudly on a syntax or validation error.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import initWabt from 'wabt';

const root = fileURLToPath(new URL('..', import.meta.url));
const srcDir = join(root, 'src', 'optim', 'wasm');
const outDir = join(root, 'dist', 'src', 'optim', 'wasm');

const wabt = await initWabt();
mkdirSync(outDir, { recursive: true });
for (const file of readdirSync(srcDir).filter((f) => f.endsWith('.wat'))) {
  const text = readFileSync(join(srcDir, file), 'utf8');
  // SIMD for f32x4, threads for the shared (imported) memory.
  const features = { simd: true, threads: true };
  const mod = wabt.parseWat(file, text, features);
  try {
    mod.validate(features);
    const { buffer } = mod.toBinary({ log: false, write_debug_names: false });
    const out = join(outDir, file.replace(/\.wat$/, '.wasm'));
    writeFileSync(out, buffer);
    console.log(`build-wasm: ${file} → ${out.slice(root.length)} (${buffer.length} bytes)`);
  } finally {
    mod.destroy();
  }
}
