import { RemoteError } from './transport';

/**
 * The JSON both transports put on the wire. Everything goes through it, in-process included, so a handler
 * never shares an object with its caller and sees the same types (no Date, Map or class instance) either way.
 */
interface WireError {
  message: string;
  name: string;
  status?: number;
}

type WireReply = { result?: unknown; error?: WireError };

export const encodePayload = (payload: unknown): string => JSON.stringify({ payload });

export const decodePayload = (body: string): unknown => (JSON.parse(body) as { payload?: unknown }).payload;

export const encodeResult = (result: unknown): string => JSON.stringify({ result } satisfies WireReply);

export const encodeFailure = (error: unknown): string =>
  JSON.stringify({ error: describeError(error) } satisfies WireReply);

/** The handler's result, or its error rethrown as a RemoteError. */
export function decodeReply(body: string): unknown {
  const reply = JSON.parse(body) as WireReply;
  if (reply.error) throw new RemoteError(reply.error.message, reply.error.name, reply.error.status);
  return reply.result;
}

function describeError(error: unknown): WireError {
  if (error instanceof RemoteError) {
    return { message: error.message, name: error.remoteName, status: error.status };
  }
  if (error instanceof Error) {
    // Domain errors (NotFoundError, ...) keep Error's `name`; their class is what tells them apart.
    const status = (error as { status?: unknown }).status;
    return {
      message: error.message,
      name: error.constructor.name,
      status: typeof status === 'number' ? status : undefined,
    };
  }
  return { message: String(error), name: 'Error' };
}
