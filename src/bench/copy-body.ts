// A parallelFor body for the bench's memory-bandwidth probe: copy this task's range of one shared
// Float32Array into another `reps` times, and report the seconds it took inside the thread (so the pool's
// dispatch is not counted as memory time).

export default function copyRange({ start, end }: { start: number; end: number }, { src, dst }: Readonly<Record<string, SharedArrayBuffer>>, { reps }: { reps: number }): number {
  const from = new Float32Array(src, start * 4, end - start);
  const to = new Float32Array(dst, start * 4, end - start);
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) to.set(from);
  return (performance.now() - t0) / 1e3;
}
