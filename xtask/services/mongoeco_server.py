"""A MongoDB wire-protocol server for the tests, on mongoeco (pinned by xtask).

No registry reachable from the project's machines ships a real mongod; mongoeco's wire
proxy speaks the protocol, and the three shims below make it accept what the Rust driver
sends, which is stricter than pymongo about types:

1. integer options of incoming commands (limit, skip, batchSize, the getMore cursor id)
   arrive as Int64/Int32 wrapper values that mongoeco's validation rejects: they are
   unwrapped to plain ints;
2. cursor ids go out as Int32, and the driver requires Int64: they are sent as Int64;
3. error replies can lack the numeric `code` the driver requires: code 2 (BadValue) is
   added.

Usage: python mongoeco_server.py --port PORT  (127.0.0.1 only; runs until SIGTERM)
"""

import argparse
import asyncio
import signal

from mongoeco.core.bson_scalars import BsonInt32, BsonInt64
from mongoeco.wire import AsyncMongoEcoProxyServer

BAD_VALUE = 2


def _plain(value):
    if isinstance(value, (BsonInt32, BsonInt64)):
        return int(value.value)
    return value


def unwrap_integer_options(body):
    """Shim 1: top-level command options, and those of a `cursor` sub-document."""
    if not isinstance(body, dict):
        return body
    for key, value in list(body.items()):
        body[key] = _plain(value)
    cursor = body.get("cursor")
    if isinstance(cursor, dict):
        for key, value in list(cursor.items()):
            cursor[key] = _plain(value)
    return body


def fix_reply(reply):
    """Shims 2 and 3: Int64 cursor ids, and a numeric code on every error."""
    if not isinstance(reply, dict):
        return reply
    cursor = reply.get("cursor")
    if isinstance(cursor, dict) and isinstance(cursor.get("id"), (int, BsonInt32)):
        cursor["id"] = BsonInt64(int(_plain(cursor["id"])))
    if reply.get("ok") in (0, 0.0) and reply.get("code") is None:
        reply["code"] = BAD_VALUE
        reply.setdefault("codeName", "BadValue")
    for error in reply.get("writeErrors") or ():
        if isinstance(error, dict) and error.get("code") is None:
            error["code"] = BAD_VALUE
    return reply


class DriverCompatibleServer(AsyncMongoEcoProxyServer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        executor = self._executor
        build_context = executor._build_request_context
        execute = executor.execute_prepared
        error_document = executor.error_document

        def build_request_context(body, **kwargs):
            return build_context(unwrap_integer_options(body), **kwargs)

        async def execute_prepared(context):
            return fix_reply(await execute(context))

        executor._build_request_context = build_request_context
        executor.execute_prepared = execute_prepared
        executor.error_document = lambda exc: fix_reply(error_document(exc))


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = DriverCompatibleServer(host="127.0.0.1", port=args.port)
    await server.start()
    print(f"mongoeco listening on 127.0.0.1:{args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()


if __name__ == "__main__":
    asyncio.run(main())
