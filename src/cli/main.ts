#!/usr/bin/env node
// The `shardtrain` command. Each subcommand lives in its own file and registers itself here.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('shardtrain')
  .description('Train models on every core of one machine: sharded AdamW over shared memory')
  .version(pkg.version);

(await import('./train.js')).registerTrain(program);
(await import('./inspect.js')).registerInspect(program);
(await import('./bench.js')).registerBench(program);
(await import('./compare.js')).registerCompare(program);
(await import('./sample.js')).registerSample(program);
(await import('./export.js')).registerExport(program);
(await import('./prepare.js')).registerPrepare(program);
await program.parseAsync(process.argv);
