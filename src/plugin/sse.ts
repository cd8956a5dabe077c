/**
 * Server-Sent Events as the agent's GET /api/events/stream writes them: frames of `id:`, `event:`,
 * `data:` and `retry:` lines ended by a blank line; comment lines (`: heartbeat`) skipped.
 */

/** One frame with data. */
export interface SseFrame {
  id: string | undefined;
  event: string;
  data: string;
}

/** Splits a stream's text, chunk by chunk, into frames; remembers the server's `retry:`. */
export class SseParser {
  #buffer = '';
  /** The reconnection delay the server asked for, in ms (undefined until it says). */
  retryMs: number | undefined;

  push(chunk: string): SseFrame[] {
    this.#buffer += chunk;
    const frames: SseFrame[] = [];
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const frame: SseFrame = { id: undefined, event: 'message', data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon === 0) continue;
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') frame.id = value;
        else if (field === 'event') frame.event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
      }
      frame.data = data.join('\n');
      if (data.length > 0) frames.push(frame);
    }
    return frames;
  }
}
