// The built-in models that run on shardtrain's own engine, by their config name, each built from its
// resolved options and its vocabulary (the data's: the workers get it from the coordinator rather than
// loading the corpus again).

import { CharLmEngineModel } from './char-lm-engine.js';
import { resolveOptions as resolveCharLmOptions, type CharLmMeta } from './char-lm.js';
import type { EngineModel } from './engine-model.js';
import { GptEngineModel } from './gpt-engine.js';
import { resolveGptOptions, type GptMeta } from './gpt.js';

export const engineBuiltins = Object.freeze(['char-lm', 'gpt'] as const);
export type EngineBuiltin = (typeof engineBuiltins)[number];

export function isEngineBuiltin(module: string): module is EngineBuiltin {
  return (engineBuiltins as readonly string[]).includes(module);
}

/** The engine model of built-in `module` for `options`, over the vocabulary its loadData() put in `meta`. */
export function engineModel(module: EngineBuiltin, options: Readonly<Record<string, unknown>>, meta: unknown): EngineModel {
  switch (module) {
    case 'gpt':
      return new GptEngineModel(resolveGptOptions(options), meta as GptMeta);
    case 'char-lm':
      return new CharLmEngineModel(resolveCharLmOptions(options), (meta as CharLmMeta).vocab);
  }
}
