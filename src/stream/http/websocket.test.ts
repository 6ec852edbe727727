import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import { collected } from '../../../test/support/gc.js';
import { WebSocketTransport } from './websocket.js';

test('once the closing handshake is done, nothing keeps the ended transport: its linger timer goes with the WebSocket', async () => {
  // end() armed a 5 s timer to cut off a peer that never answers the closing handshake; it was
  // never cleared, and through the transport's handler it kept the closed connection and its session.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const { port } = wss.address() as { port: number };
  const ended = async (): Promise<{ ref: WeakRef<object>; client: WebSocket }> => {
    const accepted = once(wss, 'connection');
    const client = new WebSocket(`ws://127.0.0.1:${port}/`);
    const [ws] = (await accepted) as [WebSocket];
    const handler = { data: () => undefined, closed: () => undefined };
    const transport = new WebSocketTransport(ws, { remoteAddress: '127.0.0.1', secure: true }, undefined, 60_000);
    transport.setHandler(handler);
    const closed = once(ws, 'close');
    transport.end();
    await closed;
    return { ref: new WeakRef(handler), client };
  };
  const { ref, client } = await ended();
  try {
    assert.equal(await collected(ref), true);
  } finally {
    client.terminate();
    wss.close();
  }
});
