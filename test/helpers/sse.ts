/** A minimal Server-Sent Events client over node:http, for tests that need a real socket. */
import { request, type IncomingMessage } from 'node:http';

export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
  retry?: string;
}

export interface SseClient {
  response: IncomingMessage;
  frames: SseFrame[];
  /** Resolves once `count` frames matching `pred` have arrived (rejects after timeoutMs). */
  waitFor(pred: (frame: SseFrame) => boolean, count?: number, timeoutMs?: number): Promise<SseFrame[]>;
  /** Resolves when the server ends or drops the stream. */
  ended: Promise<void>;
  close(): void;
}

function parse(block: string): SseFrame {
  const frame: SseFrame = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) frame.comment = line.slice(1).trim();
    else {
      const i = line.indexOf(':');
      const field = line.slice(0, i) as 'id' | 'event' | 'data' | 'retry';
      frame[field] = line.slice(i + 1).replace(/^ /, '');
    }
  }
  return frame;
}

/** Opens `url` (GET) with optional headers and parses frames as they come. */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } });
    req.on('error', reject);
    req.on('response', (response) => {
      const frames: SseFrame[] = [];
      const waiters = new Set<() => void>();
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          frames.push(parse(buffer.slice(0, end)));
          buffer = buffer.slice(end + 2);
        }
        for (const waiter of waiters) waiter();
      });
      const ended = new Promise<void>((done) => response.on('close', () => done()));
      resolve({
        response,
        frames,
        ended,
        close: () => req.destroy(),
        waitFor(pred, count = 1, timeoutMs = 5000) {
          return new Promise((ok, fail) => {
            const check = () => {
              const found = frames.filter(pred);
              if (found.length < count) return;
              waiters.delete(check);
              clearTimeout(timer);
              ok(found);
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`timed out waiting for ${count} frames; have ${JSON.stringify(frames).slice(0, 500)}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
      });
    });
    req.end();
  });
}
