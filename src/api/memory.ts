// `shardtrain/memory`: where every float lives (the flat layout and its shards), for parallelFor loops over an
// optimizer's memories.
export { computeLayout, partBoundary } from '../memory/layout.js';
export type { Layout, Segment, ShardRange, TensorPlacement, TensorSpec } from '../memory/layout.js';
