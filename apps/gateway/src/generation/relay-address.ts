/**
 * host:port where workers deliver this gateway's token events: what each job carries as relayAddress.
 * The relay transport (grpc/relay-grpc.server.ts) sets it once bound; the generation service reads it.
 */
export class RelayAddress {
  private address: string | null = null;

  set(address: string): void {
    this.address = address;
  }

  get value(): string {
    if (this.address === null) throw new Error('relay server not bound yet');
    return this.address;
  }
}
