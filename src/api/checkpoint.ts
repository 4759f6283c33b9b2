// `shardtrain/checkpoint`: reading, verifying and writing shardtrain's safetensors checkpoints.
export { Checkpoint } from '../checkpoint/open.js';
export type { OpenedMetadata } from '../checkpoint/open.js';
export { writeCheckpoint, readCheckpointHeader, checkpointMetadata, verifyCheckpoint, readTensor, fileTensorName, CheckpointError } from '../checkpoint/checkpoint.js';
export type { CheckpointHeader, CheckpointMetadata, CheckpointStates } from '../checkpoint/checkpoint.js';
export { verifyCheckpointFile, listCheckpoints, checkpointFileName, resolveCheckpoint } from '../checkpoint/checkpoint-store.js';
export type { VerifiedCheckpoint, StoredCheckpoint } from '../checkpoint/checkpoint-store.js';
export { Gpt2Checkpoint, Gpt2ImportError, gpt2TensorName } from '../checkpoint/gpt2-import.js';
export type { Gpt2Dims, Gpt2Source } from '../checkpoint/gpt2-import.js';
