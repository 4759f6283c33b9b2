// `shardtrain/checkpoint`: reading, verifying and writing shardtrain's safetensors checkpoints.
export { writeCheckpoint, readCheckpointHeader, checkpointMetadata, verifyCheckpoint, readTensor, fileTensorName, CheckpointError } from '../train/checkpoint.js';
export type { CheckpointHeader, CheckpointMetadata, CheckpointStates } from '../train/checkpoint.js';
export { verifyCheckpointFile, listCheckpoints, checkpointFileName } from '../train/checkpoint-store.js';
export type { VerifiedCheckpoint, StoredCheckpoint } from '../train/checkpoint-store.js';
