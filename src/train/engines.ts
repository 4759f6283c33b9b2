// Which engine a config runs on, and building it: the built-in models on shardtrain's own engine unless the
// config says "engine": "tfjs"; model modules (tfjs LayersModels) on tfjs.

import { isEngineBuiltin } from '../models/builtin-engines.js';
import type { TrainConfig } from './config.js';
import type { Engine, EngineKind } from './engine.js';
import { ShardtrainEngine } from './shardtrain-engine.js';
import type { EngineFault } from './shardtrain-runner.js';
import { TfjsEngine } from './tfjs-engine.js';

export interface EngineSetup {
  readonly config: TrainConfig;
  readonly replicas: number;
  readonly threads: number;
  /** The step guard's table (step-guard.ts): each gradient task writes its thread id at its index. */
  readonly threadTable: SharedArrayBuffer;
  /** Where the config came from, for messages. */
  readonly where: string;
  /** @internal test hook of the shardtrain engine (shardtrain-runner.ts EngineFault). */
  readonly fault?: EngineFault;
}

/** The engine `config` runs on. */
export function engineOf(config: TrainConfig): EngineKind {
  return config.engine ?? (isEngineBuiltin(config.model.module) ? 'shardtrain' : 'tfjs');
}

/** Gradient tasks per step: one per member of the replicas' teams on shardtrain (teamSizes), one per replica on tfjs. */
export function engineTaskCount(config: TrainConfig, replicas: number, threads: number): number {
  return engineOf(config) === 'shardtrain' ? Math.max(threads, replicas) : replicas;
}

export async function createEngine(setup: EngineSetup): Promise<Engine> {
  const { config, replicas, threads, threadTable, where } = setup;
  if (engineOf(config) === 'shardtrain') return ShardtrainEngine.create(config, replicas, threads, threadTable, where, setup.fault);
  return TfjsEngine.create(config, replicas, threads, threadTable);
}
