/**
 * How the long-running commands (`rebound worker`, its supervisor, `rebound start`) take SIGTERM and SIGINT.
 *
 * - The first signal stops gracefully: running jobs have the shutdown grace to finish.
 * - Run by hand, a second signal hurries the stop: the running jobs are aborted and released now, uncharged.
 *   Before, Node's default action for a second signal killed the process mid-job, and its jobs waited for
 *   their leases and were counted as a crash, towards poison.
 * - A third ends the process (exit 130).
 *
 * A process supervised by Rebound takes every repeat as the same stop: a stop signal often reaches it twice
 * (systemd's default KillMode=control-group sends SIGTERM to every process of a service, then the supervisor
 * sends its own, and a terminal's Ctrl-C reaches the whole process group), and its supervisor hurries or
 * kills it when it is asked to.
 */
export interface StopSteps {
  stop(signal: NodeJS.Signals): void;
  hurry(signal: NodeJS.Signals): void;
  /** The last resort before exit(130); the supervisor kills its processes here. */
  end?(signal: NodeJS.Signals): void;
}

/** Listens from now on (call it before the first await, so a signal during start-up is a stop too). */
export function onStopSignals(steps: StopSteps, { repeatsAreOneStop = false } = {}): void {
  let signals = 0;
  const on = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) steps.stop(signal);
    else if (repeatsAreOneStop) return;
    else if (signals === 2) steps.hurry(signal);
    else {
      steps.end?.(signal);
      process.exit(130);
    }
  };
  process.on('SIGTERM', on);
  process.on('SIGINT', on);
}
