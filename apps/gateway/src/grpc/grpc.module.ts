import { Module } from '@nestjs/common';
import { GenerationModule } from '../generation/generation.module';
import { GenerationGrpcController } from './generation.grpc-controller';
import { PublicGrpcServer } from './public-grpc.server';
import { RelayGrpcServer } from './relay-grpc.server';

/** The gRPC transports over the generation service: the public port, and the relay port workers deliver to. */
@Module({
  imports: [GenerationModule],
  providers: [RelayGrpcServer, GenerationGrpcController, PublicGrpcServer],
})
export class GrpcModule {}
