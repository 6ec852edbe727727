import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { TcpTransport } from './transport.js';

/** A loopback connection: the server's end in a TcpTransport, whose socket's write() calls are recorded. */
async function pair(): Promise<{ transport: TcpTransport; writes: string[]; client: Socket; received: () => string; server: Server }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection');
  const client = connect(port, '127.0.0.1');
  const [socket] = (await accepted) as [Socket];
  const writes: string[] = [];
  const write = socket.write.bind(socket) as (data: string) => boolean;
  socket.write = ((data: string) => {
    writes.push(data);
    return write(data);
  }) as Socket['write'];
  const transport = new TcpTransport(socket, undefined);
  transport.setHandler({ data: () => undefined, closed: () => undefined });
  let text = '';
  client.setEncoding('utf8');
  client.on('data', (d: string) => (text += d));
  return { transport, writes, client, received: () => text, server };
}

const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

test('writes made in one tick reach the socket as one write, in order, at the end of the tick', async () => {
  const { transport, writes, client, received, server } = await pair();
  try {
    transport.write('<a/>');
    transport.write('<b/>');
    transport.write('<c/>');
    assert.deepEqual(writes, [], 'nothing handed over before the end of the tick');
    assert.equal(transport.pendingBytes, 12, 'what waits counts as pending');
    await nextTick();
    assert.deepEqual(writes, ['<a/><b/><c/>']);
    transport.write('<d/>');
    await nextTick();
    assert.deepEqual(writes, ['<a/><b/><c/>', '<d/>'], 'a later tick makes a write of its own');
    const end = once(client, 'end');
    // end() sends what this tick wrote before closing.
    transport.write('<e/>');
    transport.end();
    await end;
    assert.equal(received(), '<a/><b/><c/><d/><e/>');
  } finally {
    client.destroy();
    server.close();
  }
});

test('destroy() drops what this tick wrote; writes after it are ignored', async () => {
  const { transport, writes, client, server } = await pair();
  try {
    const closed = once(client, 'close');
    transport.write('<lost/>');
    transport.destroy();
    transport.write('<after/>');
    await nextTick();
    assert.deepEqual(writes, []);
    await closed;
  } finally {
    client.destroy();
    server.close();
  }
});
