// Which engine a config runs on, and building it.

import type { TrainConfig } from './config.js';
import type { Engine } from './engine.js';
import { TfjsEngine } from './tfjs-engine.js';

export interface EngineSetup {
  readonly config: TrainConfig;
  readonly replicas: number;
  readonly threads: number;
  /** The step guard's table (step-guard.ts): each gradient task writes its thread id at its index. */
  readonly threadTable: SharedArrayBuffer;
  /** Where the config came from, for messages. */
  readonly where: string;
}

/** Gradient tasks per step: one per replica on tfjs. */
export function engineTaskCount(_config: TrainConfig, replicas: number, _threads: number): number {
  return replicas;
}

export async function createEngine(setup: EngineSetup): Promise<Engine> {
  return TfjsEngine.create(setup.config, setup.replicas, setup.threads, setup.threadTable);
}
