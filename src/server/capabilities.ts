/**
 * Wires the capabilities that exist in this build into the server's
 * providers (providers.ts). A capability that is not wired here answers 501.
 */
import type { Rebound } from '../rebound.ts';
import type { OperatorProviders } from './providers.ts';

export async function capabilityProviders(_rebound: Rebound): Promise<OperatorProviders> {
  return {};
}
