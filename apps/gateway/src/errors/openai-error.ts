/**
 * OpenAI's error body, `{ error: { message, type, param, code } }`, which the OpenAI SDKs turn into their
 * typed errors. `type` follows the HTTP status as OpenAI's API does; `code` is specific where the
 * gateway knows more (`model_not_found`, `unsupported_parameter`), else the gRPC status in lower case.
 */
export interface OpenAiErrorBody {
  readonly error: { readonly message: string; readonly type: string; readonly param: string | null; readonly code: string | null };
}

export function openAiErrorBody(httpStatus: number, message: string, param: string | null, code: string | null): OpenAiErrorBody {
  return { error: { message, type: openAiErrorType(httpStatus), param, code } };
}

function openAiErrorType(httpStatus: number): string {
  if (httpStatus === 401) return 'authentication_error';
  if (httpStatus === 403) return 'permission_error';
  if (httpStatus === 429) return 'rate_limit_error';
  if (httpStatus >= 400 && httpStatus < 499) return 'invalid_request_error';
  return 'server_error';
}
