// A parallelFor loop body: y ← a·x + y over this task's range of two shared Float32Arrays.
// Returns the partial sum of y over the range, so the caller can reduce the results.
export default function saxpy({ start, end }, { x, y }, { a }) {
  const xs = new Float32Array(x);
  const ys = new Float32Array(y);
  let sum = 0;
  for (let i = start; i < end; i++) {
    ys[i] += a * xs[i];
    sum += ys[i];
  }
  return sum;
}
