#!/usr/bin/env node
// Build step: compile the WebAssembly text kernels into binaries next to the compiled JS with wabt, the
// WebAssembly Binary Toolkit's own parser and validator (an npm devDependency, so the build needs nothing
// outside the npm registry). Plain .mjs so it runs before tsc. Fails loudly on a syntax or validation error.
//   src/kernels/wasm/*.wat      hand-written   → dist/src/kernels/wasm/*.wasm
//   src/kernels/wasm/*.wat.mjs  generators     → dist/src/kernels/wasm/<name>.wasm (+ the generated <name>.wat, to read)
// and each module over a plain memory also as <name>-shared.wasm (below).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import initWabt from 'wabt';

const root = fileURLToPath(new URL('..', import.meta.url));
const wabt = await initWabt();

// A module that imports a plain memory cannot be given a shared one (a LinkError), and the engine's arenas are
// shared (every member of a replica's team works in one): each such module gets a twin, <name>-shared,
// identical but for the import (wasm-modules.ts instantiate() picks the one the memory needs).
const kPlainImport = '(import "env" "memory" (memory 0))';
const kSharedImport = '(import "env" "memory" (memory 0 65536 shared))';

function assemble(name, text, features, outDir) {
  if (text.includes(kPlainImport)) {
    const twin = name.replace(/\.wat$/, '-shared.wat');
    assemble(twin, text.replace(kPlainImport, kSharedImport), { ...features, threads: true }, outDir);
  }
  const mod = wabt.parseWat(name, text, features);
  try {
    mod.validate(features);
    const { buffer } = mod.toBinary({ log: false, write_debug_names: false });
    const out = join(outDir, name.replace(/\.wat$/, '.wasm'));
    writeFileSync(out, buffer);
    console.log(`build-wasm: ${name} → ${out.slice(root.length)} (${buffer.length} bytes)`);
  } finally {
    mod.destroy();
  }
}

{
  const srcDir = join(root, 'src', 'kernels', 'wasm');
  const outDir = join(root, 'dist', 'src', 'kernels', 'wasm');
  mkdirSync(outDir, { recursive: true });
  for (const file of readdirSync(srcDir).sort()) {
    if (file.endsWith('.wat')) {
      // SIMD for f32x4, threads for the shared (imported) memory.
      assemble(file, readFileSync(join(srcDir, file), 'utf8'), { simd: true, threads: true }, outDir);
    } else if (file.endsWith('.wat.mjs')) {
      const { default: generate } = await import(pathToFileURL(join(srcDir, file)).href);
      for (const { name, text, features } of generate()) {
        writeFileSync(join(outDir, `${name}.wat`), text);
        assemble(`${name}.wat`, text, features, outDir);
      }
    }
  }
}
