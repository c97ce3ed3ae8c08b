/**
 * Actor stream name ⇄ JetStream subject: `launch.01J…` ⇄ `<prefix>.launch.01J…`. Names are checked
 * against the envelope's stream-name rule first, so no wildcard or stray dot ever reaches a subject.
 */
import { streamName } from '../../events/envelope.js';

/** A stream name that is not `<chart>.<id>` with a known chart and a safe id. */
export class InvalidStreamNameError extends Error {
  readonly code = 'INVALID_STREAM_NAME';
  constructor(readonly stream: string) {
    super(`not an actor stream name: ${JSON.stringify(stream).slice(0, 100)}`);
    this.name = 'InvalidStreamNameError';
  }
}

export function subjectForStream(prefix: string, stream: string): string {
  if (!streamName.safeParse(stream).success) throw new InvalidStreamNameError(stream);
  return `${prefix}.${stream}`;
}

/** The actor stream a subject holds, or undefined if the subject is not `<prefix>.<chart>.<id>`. */
export function streamForSubject(prefix: string, subject: string): string | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const rest = subject.slice(prefix.length + 1);
  return streamName.safeParse(rest).success ? rest : undefined;
}
