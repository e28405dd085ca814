/**
 * The one line a process prints when it cannot start (bad config, bad model file, Redis unreachable):
 * `<app>: cannot start: <Name>: <message>[; caused by <Name>: <message>]...`, newlines folded. The stack
 * follows only with `withStack` (LOG_LEVEL debug or trace).
 */
export function startupFailureLine(app: string, error: unknown, withStack = false): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  const line = `${app}: cannot start: ${unique(parts).join('; caused by ')}`.replace(/\s*\n\s*/g, ' ');
  return withStack && error instanceof Error && error.stack ? `${line}\n${error.stack}` : line;
}

/** A cause often repeats its wrapper's message; say it once. */
function unique(parts: string[]): string[] {
  return parts.filter((part, i) => !parts.slice(0, i).some((earlier) => earlier.includes(part.slice(part.indexOf(': ') + 2))));
}
