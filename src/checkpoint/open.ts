// A shardtrain checkpoint opened once. Resume, `sample`, `export` and `inspect` each need a few things of
// the same file — its metadata, its config, its tensors checked against a model, the values in the shard
// memories or one tensor at a time — and used to pass its header through five functions in three files to
// get them. A Checkpoint reads and checks the header, the metadata and both checksums when it is opened;
// its methods then only use what it holds (and the file, for the values).

import type { TensorSpec } from '../memory/layout.js';
import type { StateName } from '../memory/shard-states.js';
import type { TensorView } from '../memory/tensor-views.js';
import {
  CheckpointError,
  checkCheckpointTensors,
  checkpointMetadata,
  readCheckpointHeader,
  readCheckpointInto,
  readTensor,
  verifyCheckpoint,
  type CheckpointHeader,
  type CheckpointMetadata,
} from './checkpoint.js';

export type OpenedMetadata = CheckpointMetadata & { readonly format: string };

export class Checkpoint {
  readonly path: string;
  readonly header: CheckpointHeader;
  /** step, lr, convention, format, and the config and data position as parsed JSON. */
  readonly metadata: OpenedMetadata;
  /** True when both checksums were checked and held (always, except for `Checkpoint.examine`). */
  readonly verified: boolean;

  private constructor(header: CheckpointHeader, metadata: OpenedMetadata, verified: boolean) {
    this.path = header.path;
    this.header = header;
    this.metadata = metadata;
    this.verified = verified;
  }

  /**
   * Open `path`: header, metadata and both checksums checked (and the step, when `step` says which one the
   * file's name promises). Throws CheckpointError, one line naming the file.
   */
  static open(path: string, step?: number): Checkpoint {
    return Checkpoint.fromHeader(readCheckpointHeader(path), step);
  }

  /** As open(), from a header already read (and checked as safetensors) by readCheckpointHeader. */
  static fromHeader(header: CheckpointHeader, step?: number): Checkpoint {
    const metadata = checkpointMetadata(header);
    verifyCheckpoint(header);
    if (step !== undefined && metadata.step !== step) throw new CheckpointError(header.path, `holds step ${metadata.step}, its name says ${step}`);
    return new Checkpoint(header, metadata, true);
  }

  /**
   * For `inspect`, which must show a damaged file too: the header and metadata are checked, the checksums
   * are not (`checksums()` says whether they hold). Nothing should be loaded from the result.
   */
  static examine(header: CheckpointHeader): Checkpoint {
    return new Checkpoint(header, checkpointMetadata(header), false);
  }

  get step(): number {
    return this.metadata.step;
  }

  /** Where the config comes from, in the words a config error names it with. */
  get configSource(): string {
    return `checkpoint ${this.path} (__metadata__.config)`;
  }

  /** The config as stored, validated by `parse` (train's parseConfig), whose errors name configSource. */
  config<C>(parse: (raw: unknown, where: string) => C): C {
    return parse(this.metadata.config, this.configSource);
  }

  /** The model's tensors as the file holds them: every tensor that is not optimizer state, in file order. */
  get tensors(): TensorSpec[] {
    return [...this.header.tensors]
      .filter(([name]) => !name.startsWith('optimizer.'))
      .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])
      .map(([name, h]) => ({ name, shape: h.shape, size: h.shape.reduce((a, d) => a * d, 1) }));
  }

  /** The file holds exactly `tensors` (names and shapes) for each of `states`, and nothing else. */
  check(tensors: readonly TensorSpec[], states: readonly StateName[]): void {
    checkCheckpointTensors(this.header, tensors, states);
  }

  /** Copy the file's values into live views, state by state (call check() first). */
  readInto(tensors: readonly TensorSpec[], states: Partial<Record<StateName, Readonly<Record<string, TensorView>>>>): void {
    readCheckpointInto(this.header, tensors, states);
  }

  /** One tensor of the file (a file name: `wte/embeddings`, `optimizer.m.wte/embeddings`) in a new array. */
  readTensor(name: string): Float32Array {
    return readTensor(this.header, name);
  }

  /** 'ok', or what is wrong with the checksums (a verified checkpoint is 'ok' without reading the file again). */
  checksums(): string {
    if (this.verified) return 'ok';
    try {
      verifyCheckpoint(this.header);
      return 'ok';
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      return err.message.slice(`checkpoint ${this.path}: `.length);
    }
  }
}
