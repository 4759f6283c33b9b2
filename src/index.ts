// shardtrain's public API. Re-exports only.
export { createOptimizer, ShardedAdamW, NonFiniteGradientError, kInlineBelowParams } from './optim/optimizer.js';
export type { StepResult, GradientsInput } from './optim/optimizer.js';
export type { OptimizerOptions, ParamsInput, NonFinitePolicy } from './optim/options.js';
export { conventions, conventionNames } from './optim/conventions.js';
export type { ConventionKnobs, ConventionName, DecayMode } from './optim/conventions.js';
export { createSchedule, scheduleNames } from './optim/schedules.js';
export type { Schedule, ScheduleName, ScheduleOptions } from './optim/schedules.js';
export { bertNoDecay, hfNoDecay, normalizedWeightDecay, compileDecayTable } from './optim/decay-rules.js';
export type { ExclusionRule, NameMatcher, ParamGroup, TensorDecayEntry, NormalizedWeightDecayOptions } from './optim/decay-rules.js';
export { parallelFor } from './parallel/parallel-for.js';
export type { ParallelForOptions } from './parallel/parallel-for.js';
export { createPool, WorkerPool } from './parallel/pool.js';
export type { PoolOptions } from './parallel/pool.js';
export { SplitTensorView } from './memory/tensor-views.js';
export type { TensorView } from './memory/tensor-views.js';
export { computeLayout } from './memory/layout.js';
export type { Layout, Segment, ShardRange, TensorPlacement } from './memory/layout.js';
