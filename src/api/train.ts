// `shardtrain/train`: the `shardtrain train` job as a function, training configs, model modules.
export { runTraining, kDefaultConfig } from '../train/run.js';
export type { RunOptions, RunSummary } from '../train/run.js';
export { parseConfig, loadConfigFile, trainConfigSchema, optimizerOptionsFromConfig, ConfigError, checkpointConfig } from '../train/config.js';
export type { TrainConfig, TrainConfigInput } from '../train/config.js';
export { builtinModels, loadModelModule, startModel } from '../models/model-module.js';
export type { ModelModule, DataSet, Examples, TokenWindows, ExampleSet, SampleContext, StartedModel } from '../models/model-module.js';
export { sampleFromCheckpoint } from '../train/sample.js';
export type { SampleOptions, SampleResult } from '../train/sample.js';
