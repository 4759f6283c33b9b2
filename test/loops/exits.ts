// A loop body whose first task kills its thread, as a crash or an out-of-memory would.
export default function exits(range: { start: number }): number {
  if (range.start === 0) process.exit(3);
  return 1;
}
