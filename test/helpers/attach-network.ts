import { type GatewaySpec, ScenarioNetwork } from '../scenarios/helpers.js';
import { TEST_ADMIN_TOKEN, type TestGalet } from './galet.js';

/**
 * A ScenarioNetwork driving a Galet the test started itself (its own settings): through the API
 * and the UDP port, as for another process. `close()` stops only the gateways.
 */
export function attachNetwork(
  galet: TestGalet,
  specs: readonly GatewaySpec[],
): Promise<ScenarioNetwork> {
  const { baseUrl, udpPort, dataDir } = galet;
  return ScenarioNetwork.attach({ baseUrl, udpPort, adminToken: TEST_ADMIN_TOKEN, dataDir }, specs);
}
