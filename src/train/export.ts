// `shardtrain export --to torch`: the run's side of it. The checkpoint is found and opened (a file, or a
// run directory's newest checkpoint that verifies), its config validated by train's rules, and the
// export itself written by src/checkpoint/torch-export.ts.

import { resolveCheckpoint } from '../checkpoint/checkpoint-store.js';
import { writeTorchExport, type TorchExportResult } from '../checkpoint/torch-export.js';
import { checkpointConfig, optimizerOptionsFromConfig } from './config.js';

/** Export checkpoint `source` to `out` (and its data file beside it); nothing is written before every check passes. */
export async function exportToTorch(source: string, out: string, warn: (line: string) => void): Promise<TorchExportResult> {
  const checkpoint = resolveCheckpoint(source, warn, 'export: ');
  const config = checkpointConfig(checkpoint);
  return writeTorchExport(checkpoint, { config, adamw: (counts) => optimizerOptionsFromConfig(config, counts) }, out);
}
