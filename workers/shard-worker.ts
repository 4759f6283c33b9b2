// Entry point of every pool thread: piscina runs the default export once per task.
import { workerData } from 'piscina';
import { createWorkerRuntime } from '../src/parallel/worker-runtime.js';
import type { WorkerInit } from '../src/parallel/worker-protocol.js';

export default createWorkerRuntime(workerData as WorkerInit);
