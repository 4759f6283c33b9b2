// Is a process of this host still there? For files that name their writer's pid (checkpoint temp files,
// the run-directory lock): a live writer's file is left alone, a dead one's is the next run's to clean up.

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
