import { Server } from '@grpc/grpc-js';
import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { relay } from '@kcache-serve/proto';
import type { Logger } from 'pino';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { LOGGER } from '../core/tokens';
import { RelayAddress } from '../generation/relay-address';
import { DispatchOutcome, StreamRegistry } from '../generation/stream-registry';
import { bindServer, shutdownServer } from './grpc-server-lifecycle';
import { toServiceError } from '../errors/error-status';
import { mutualTlsCredentialsOf } from './server-credentials';

/**
 * Internal gRPC endpoint where workers deliver token events (kcache/internal/v1/relay.proto). Each event
 * must carry its job's capability (StreamRegistry.dispatch checks it). Bound to RELAY_HOST, by default the
 * advertised host, not every interface. With RELAY_TLS_* it also takes only workers presenting a client
 * certificate signed by RELAY_TLS_CA_PATH.
 */
@Injectable()
export class RelayGrpcServer implements OnModuleInit, OnApplicationShutdown {
  private readonly server = new Server();
  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(StreamRegistry) registry: StreamRegistry,
    @Inject(RelayAddress) private readonly relayAddress: RelayAddress,
    @Inject(LOGGER) log: Logger,
  ) {
    const implementation: relay.RelayServer = {
      deliver: (call, callback) => {
        let outcome: DispatchOutcome;
        try {
          outcome = registry.dispatch(call.request.events);
        } catch (error) {
          log.warn({ peer: call.getPeer(), workerId: call.request.workerId }, 'relay call without capabilities refused');
          return callback(toServiceError(error));
        }
        if (outcome.refusedRequestIds.length > 0) {
          log.warn({ peer: call.getPeer(), workerId: call.request.workerId, requestIds: outcome.refusedRequestIds }, 'relay events with a wrong capability dropped');
        }
        callback(null, { cancelRequestIds: outcome.cancelRequestIds });
      },
    };
    this.server.addService(relay.RelayService, implementation);
  }

  async onModuleInit(): Promise<void> {
    const port = await bindServer(this.server, this.config.relayHost, this.config.relayPort, mutualTlsCredentialsOf(this.config.relayTls));
    this.relayAddress.set(`${this.config.relayAdvertiseHost}:${port}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await shutdownServer(this.server, 2000);
  }
}
