import { Server } from '@grpc/grpc-js';
import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { relay } from '@kcache-serve/proto';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { bindServer, shutdownServer } from '../grpc/grpc-server-lifecycle';
import { mutualTlsCredentialsOf } from '../grpc/server-credentials';
import { StreamRegistry } from './stream-registry';

/**
 * Internal gRPC endpoint where workers deliver token events (kcache/internal/v1/relay.proto). With
 * RELAY_TLS_* it takes only workers presenting a client certificate signed by RELAY_TLS_CA_PATH.
 */
@Injectable()
export class RelayGrpcServer implements OnModuleInit, OnApplicationShutdown {
  private readonly server = new Server();
  private address: string | null = null;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(StreamRegistry) registry: StreamRegistry,
  ) {
    const implementation: relay.RelayServer = {
      deliver: (call, callback) => callback(null, { cancelRequestIds: registry.dispatch(call.request.events) }),
    };
    this.server.addService(relay.RelayService, implementation);
  }

  /** host:port workers reach this server at (what jobs carry as relayAddress). */
  get advertisedAddress(): string {
    if (this.address === null) throw new Error('relay server not bound yet');
    return this.address;
  }

  async onModuleInit(): Promise<void> {
    const port = await bindServer(this.server, this.config.relayHost, this.config.relayPort, mutualTlsCredentialsOf(this.config.relayTls));
    this.address = `${this.config.relayAdvertiseHost}:${port}`;
  }

  async onApplicationShutdown(): Promise<void> {
    await shutdownServer(this.server, 2000);
  }
}
