/**
 * Like Promise.all, but waits for every task to finish before rejecting with the first error, so that no
 * task is still writing shared memory when the caller hears of a failure.
 */
export async function settleAll<T>(runs: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(runs);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
