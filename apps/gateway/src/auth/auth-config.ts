import { ApiKey } from './api-key';

/** Who may call: the API keys, and which endpoints need one (parsed from the environment in config/). */
export interface AuthConfig {
  /** Empty when auth is off. */
  readonly apiKeys: readonly ApiKey[];
  readonly isEnabled: boolean;
  readonly isHealthProtected: boolean;
  readonly isMetricsProtected: boolean;
}
