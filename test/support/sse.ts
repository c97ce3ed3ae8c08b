/** A small SSE reader for tests: frames from a fetch stream, with a way to stop. */
export interface SseFrame {
  event: string;
  id?: string;
  data: unknown;
}

export interface SseReader {
  frames: SseFrame[];
  status: number;
  headers: Headers;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

export async function openSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<SseReader> {
  const ac = new AbortController();
  const res = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: ac.signal,
  });
  const frames: SseFrame[] = [];
  const ended = (async () => {
    if (!res.body || res.status !== 200) return;
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f: { event?: string; id?: string; data?: string } = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const k = line.slice(0, c);
            const v = line.slice(c + 1).replace(/^ /, '');
            if (k === 'event') f.event = v;
            else if (k === 'id') f.id = v;
            else if (k === 'data') f.data = (f.data ? f.data + '\n' : '') + v;
          }
          if (f.data !== undefined)
            frames.push({
              event: f.event ?? 'message',
              ...(f.id ? { id: f.id } : {}),
              data: JSON.parse(f.data),
            });
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return { frames, status: res.status, headers: res.headers, ended, close: () => ac.abort() };
}
