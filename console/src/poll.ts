/**
 * Runs `task` now and every `intervalMs` while the page is visible. A hidden tab polls nothing (it would
 * load the gateway for a view nobody sees); becoming visible again refreshes at once. Runs never overlap:
 * a slow answer delays the next tick instead of piling requests up.
 */
export function pollWhileVisible(task: () => Promise<void>, intervalMs: number): { refresh(): void; stop(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let stopped = false;
  const schedule = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!stopped && document.visibilityState === 'visible') timer = setTimeout(run, intervalMs);
  };
  const run = async () => {
    if (running || stopped || document.visibilityState !== 'visible') return;
    running = true;
    try {
      await task();
    } finally {
      running = false;
      schedule();
    }
  };
  const onVisibility = () => (document.visibilityState === 'visible' ? void run() : schedule());
  document.addEventListener('visibilitychange', onVisibility);
  void run();
  return {
    refresh: () => void run(),
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
