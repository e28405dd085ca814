import { Metadata, ServerInterceptingCall, ServerInterceptor, ServerListenerBuilder, status as Status } from '@grpc/grpc-js';
import { ApiKeyAuthenticator } from './api-key-authenticator';

/** The authorization metadata value as the authenticator takes it (first string value, else undefined). */
export function authorizationOf(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Refuses calls without a valid API key with UNAUTHENTICATED as soon as their metadata arrives, before the
 * request message is read or any handler runs. Methods for which `isOpen(path)` holds pass unchecked.
 */
export function grpcAuthInterceptor(
  authenticator: ApiKeyAuthenticator,
  isOpen: (methodPath: string) => boolean,
  onRefused: (methodPath: string) => void,
): ServerInterceptor {
  return (method, call) => {
    if (!authenticator.isEnabled || isOpen(method.path)) return new ServerInterceptingCall(call);
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, nextMetadata) => {
              try {
                authenticator.authenticate(authorizationOf(metadata));
              } catch (error) {
                onRefused(method.path);
                call.sendStatus({ code: Status.UNAUTHENTICATED, details: (error as Error).message });
                return;
              }
              nextMetadata(metadata);
            })
            .build(),
        ),
    });
  };
}
