// Guards an HTTP/2 connection against peers that hold the server's work without finishing it:
// requests that never arrive in full, and streams reset faster than a token bucket allows.

import http2 from "node:http2";

/** Streams whose call has started (deferUntilNotReset ran its handler). */
const startedStreams = new WeakSet<http2.Http2Stream>();
/**
 * What a stream reset before its call even started costs in the bucket: a client cancelling a
 * call it waited on (a deadline) cannot do so in the same batch of frames that opened it, a Rapid
 * Reset burst does it for every stream, and the burst is all processed in one go before the next
 * timer or call can run, so the guard must react after a fraction of the bucket.
 */
const UNSTARTED_RESET_COST = 10;

/**
 * Ends an HTTP/2 session whose peer resets streams it opened before they were answered faster
 * than a token bucket allows (the Rapid Reset attack: each opened stream costs the server work,
 * its reset costs the peer nothing). Cancelling a stream that was already answering (a WatchQueue
 * a client leaves) is ordinary and not counted.
 */
export function guardRapidReset(
  session: http2.ServerHttp2Session,
  burst: number,
  ratePerSecond: number,
  onExceeded: () => void,
): void {
  let tokens = burst;
  let refilledAt = performance.now();
  session.on("stream", (stream) => {
    stream.once("close", () => {
      if (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR || stream.headersSent) return;
      const now = performance.now();
      tokens = Math.min(burst, tokens + ((now - refilledAt) / 1000) * ratePerSecond);
      refilledAt = now;
      tokens -= startedStreams.has(stream) ? 1 : UNSTARTED_RESET_COST;
      if (tokens >= 0 || session.destroyed) return;
      onExceeded();
      // GOAWAY with the reason first: destroy() alone would tell the peer NO_ERROR.
      session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.destroy();
    });
  });
}

export type Http2Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/**
 * Starts a stream's handler once the frames that arrived with its headers are processed: a
 * stream reset in the same batch (a Rapid Reset burst) is then already closed and costs nothing
 * more than its objects, instead of a whole call set up and torn down.
 */
export function deferUntilNotReset(handler: Http2Handler): Http2Handler {
  return (req, res) =>
    setImmediate(() => {
      if (req.stream.destroyed) return;
      startedStreams.add(req.stream);
      handler(req, res);
    });
}

/** Closes an HTTP/2 stream whose request (headers and body) has not arrived in full within `timeoutMs`. */
export function withRequestDeadline(handler: Http2Handler, timeoutMs: number): Http2Handler {
  return (req, res) => {
    const timer = setTimeout(() => req.stream.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
    const done = () => clearTimeout(timer);
    req.once("end", done);
    req.stream.once("close", done);
    handler(req, res);
  };
}
