import { WebSocket } from 'ws';

/** A websocket client of the serial console proxy, as a browser terminal or websocat uses it. */
export interface SerialConsoleClient {
  /** Sends bytes to the guest's serial port. */
  send(text: string): void;
  /** Everything received so far, as text. */
  received(): string;
  /** Resolves with the text received once it matches `pattern` (received after `from`, default 0). */
  waitFor(pattern: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  close(): Promise<void>;
}

/** Connects to a console URL (`ws://host:port/?token=...`) with the `binary` subprotocol, as Nova's clients do. */
export function openSerialConsole(url: string): Promise<SerialConsoleClient> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, ['binary']);
    let text = '';
    socket.on('message', (data: Buffer) => {
      text += data.toString('utf8');
    });
    socket.once('unexpected-response', (_request, response) =>
      reject(new Error(`the proxy refused the console: ${response.statusCode}`)),
    );
    // Rejects while connecting; later errors end the session, which waitFor reports.
    socket.on('error', reject);
    socket.once('open', () => {
      resolve({
        send: (data) => socket.send(Buffer.from(data)),
        received: () => text,
        waitFor: async (pattern, timeoutMs = 30_000, from = 0) => {
          const deadline = Date.now() + timeoutMs;
          while (!pattern.test(text.slice(from))) {
            if (socket.readyState !== WebSocket.OPEN)
              throw new Error(`the console closed; it showed:\n${text}`);
            if (Date.now() > deadline)
              throw new Error(`the console never showed ${pattern}; it showed:\n${text}`);
            await new Promise((r) => setTimeout(r, 50));
          }
          return text.slice(from);
        },
        close: () =>
          new Promise<void>((done) => {
            if (socket.readyState === WebSocket.CLOSED) return done();
            socket.once('close', () => done());
            socket.close();
          }),
      });
    });
  });
}

/** The HTTP status with which the proxy refuses a websocket upgrade to `url`, or 101 if it accepts it. */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, ['binary'], { headers });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      response.resume();
      socket.terminate();
    });
    socket.once('open', () => {
      resolve(101);
      socket.close();
    });
    socket.once('error', reject);
  });
}
