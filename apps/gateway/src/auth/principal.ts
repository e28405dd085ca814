/** Who a call acts for: an API key by its name, or everyone when auth is off. Limits are kept per principal. */
export interface Principal {
  readonly name: string;
}

/** The one principal of a gateway with AUTH_MODE=off. */
export const ANONYMOUS: Principal = Object.freeze({ name: 'anonymous' });
