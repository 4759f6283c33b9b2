// `shardtrain/compare`: the weight-decay comparison grid behind `shardtrain compare`.
export { runCompare, resolveCompareOptions, compareDefaults } from '../compare/index.js';
export type { CompareOptions, CompareRunOptions, CompareSummary, Cell, Stat, RunResult } from '../compare/index.js';
