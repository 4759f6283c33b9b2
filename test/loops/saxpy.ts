// A parallelFor body used by the tests: y ← a·x + y over its range, returns Σ y over the range.
export default function saxpy(range: { start: number; end: number }, buffers: { x: SharedArrayBuffer; y: SharedArrayBuffer }, args: { a: number }): number {
  const x = new Float32Array(buffers.x);
  const y = new Float32Array(buffers.y);
  let sum = 0;
  for (let i = range.start; i < range.end; i++) {
    y[i] = args.a * x[i] + y[i];
    sum += y[i];
  }
  return sum;
}
