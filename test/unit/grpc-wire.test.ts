import { Code } from "@connectrpc/connect";
import test from "ava";
import http2 from "node:http2";
import { FrameDecoder, endStatus, frameMessage, OK } from "../../src/loadtest/grpc-wire.js";

test("the frame decoder finds every message however the chunks cut the body", (t) => {
  const messages = [Buffer.from("first"), Buffer.alloc(0), Buffer.from("x".repeat(300))];
  const body = Buffer.concat(messages.map((m) => frameMessage(m)));
  for (const size of [1, 3, 5, 7, body.length]) {
    const decoder = new FrameDecoder(1000);
    const seen: string[] = [];
    for (let at = 0; at < body.length; at += size)
      t.is(
        decoder.push(body.subarray(at, at + size), { receive: (m) => seen.push(Buffer.from(m).toString()) }),
        undefined,
      );
    t.deepEqual(
      seen,
      messages.map((m) => m.toString()),
      `chunks of ${size}`,
    );
  }
  t.is(new FrameDecoder(10).push(frameMessage(Buffer.alloc(11)), { receive() {} })?.code, Code.ResourceExhausted);
});

test("the final status: trailers first, then the HTTP status, the lost connection, the reset code", (t) => {
  const end = { httpStatus: 200, rstCode: 0, streamError: undefined, connectionLost: false };
  t.deepEqual(endStatus({ ...end, trailers: { "grpc-status": "0" } }), { code: OK, message: "" });
  const failed = endStatus({
    ...end,
    trailers: { "grpc-status": "9", "grpc-message": "seat%20taken", "grpc-status-details-bin": "AQI" },
  });
  t.is(failed.code, Code.FailedPrecondition);
  t.is(failed.message, "seat taken");
  t.deepEqual([...failed.detailsBin!], [1, 2]);
  t.is(endStatus({ ...end, trailers: undefined, httpStatus: 503 }).code, Code.Unavailable);
  t.is(endStatus({ ...end, trailers: undefined, connectionLost: true }).code, Code.Unavailable);
  const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
  t.is(endStatus({ ...end, trailers: undefined, streamError: reset }).code, Code.Unavailable);
  const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;
  t.is(endStatus({ ...end, trailers: undefined, rstCode: NGHTTP2_REFUSED_STREAM }).code, Code.Unavailable);
  t.is(endStatus({ ...end, trailers: undefined, rstCode: NGHTTP2_CANCEL }).code, Code.Canceled);
  t.is(endStatus({ ...end, trailers: undefined, rstCode: NGHTTP2_INTERNAL_ERROR }).code, Code.Internal);
  t.is(endStatus({ ...end, trailers: undefined }).code, Code.Internal);
});
