import type { Logger } from 'pino';
import { DeliveryRecorder } from './delivery-recorder';
import { GatewayRelay } from './gateway-relay';
import { RelayChannel } from './relay-credentials';

/** One GatewayRelay per gateway address, created on first use. */
export class RelayPool {
  private readonly relays = new Map<string, GatewayRelay>();

  constructor(
    private readonly options: {
      readonly workerId: string;
      readonly channel: RelayChannel;
      readonly timeoutMs: number;
      readonly recorder: DeliveryRecorder;
      readonly onCancelRequested: (requestIds: readonly string[]) => void;
      readonly log: Logger;
    },
  ) {}

  get(address: string): GatewayRelay {
    let relay = this.relays.get(address);
    if (relay === undefined) {
      relay = new GatewayRelay({ address, ...this.options });
      this.relays.set(address, relay);
    }
    return relay;
  }

  close(): void {
    for (const relay of this.relays.values()) relay.close();
    this.relays.clear();
  }
}
