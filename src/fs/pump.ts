import { finished, type Readable, type Writable } from 'node:stream';

// stream.pipeline does this too, but each call makes an AbortController and
// aborts it when done, which builds a DOMException with a stack trace: ~35 µs
// of a step thread's time, twice for every fetch-and-zip job. This is the part
// of it that steps use: a chain of pipes, every stream destroyed on the first
// error, settled once the last stream has finished and closed.

const ignore = (): void => {};

/**
 * Pipes `streams` in order (a source, any transforms, a sink) and resolves
 * once the sink has finished and closed (its file descriptor released).
 * Rejects with the first error of any stream, a stream closed before its end
 * (`ERR_STREAM_PREMATURE_CLOSE`), or the reason of `signal`; then every
 * stream is destroyed.
 */
export function pump(streams: readonly [Readable, ...(Readable | Writable)[]], signal?: AbortSignal): Promise<void> {
  const sink = streams[streams.length - 1] as Writable;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const cleanups: Array<() => void> = [];
    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      for (const c of cleanups) c();
      // A stream that errs after the end (archiver after an abort) must not throw on the thread.
      for (const s of streams) s.on('error', ignore);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) return resolve();
      for (const s of streams) s.destroy();
      reject(err);
    };
    const onAbort = (): void => settle(signal!.reason);
    if (signal?.aborted) return settle(signal.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    for (const s of streams) {
      // The sink counts once written: a hash (a Duplex) as the sink is never read.
      const options = s === sink ? { readable: false } : {};
      cleanups.push(finished(s, options, (err) => (err ? settle(err) : s === sink ? settle() : undefined)));
    }
    for (let i = 0; i + 1 < streams.length; i++) (streams[i] as Readable).pipe(streams[i + 1] as Writable);
  });
}
