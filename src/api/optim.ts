// `shardtrain/optim`: the optimizer's pure pieces, for checking a setting without creating an optimizer.
export { compileDecayTable } from '../optim/decay-rules.js';
export { resolveAdamwOptions, adamwDefaults } from '../optim/options.js';
export type { ResolvedAdamw } from '../optim/options.js';
