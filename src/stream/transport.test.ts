import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as immediate } from 'node:timers/promises';
import { TLSSocket, connect as tlsConnect, createSecureContext, createServer as createTlsServer } from 'node:tls';
import { loadOrCreateTlsMaterial } from '../config/tls.js';
import { until } from '../../test/support/until.js';
import { collected } from '../../test/support/gc.js';
import { TcpTransport, type TlsSettings } from './transport.js';

/** A plain TCP connection on loopback: its two ends, and the listening server to close. */
async function loopback(): Promise<{ server: Server; client: Socket; socket: Socket }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection');
  const client = connect(port, '127.0.0.1');
  const [socket] = (await accepted) as [Socket];
  return { server, client, socket };
}

/** A loopback connection: the server's end in a TcpTransport, whose socket's write() calls are recorded. */
async function pair(): Promise<{ transport: TcpTransport; writes: string[]; client: Socket; received: () => string; server: Server }> {
  const { server, client, socket } = await loopback();
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

/** A self-signed certificate for localhost, as a server makes on first start. */
async function tlsSettings(): Promise<TlsSettings> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-transport-'));
  try {
    const { cert, key } = await loadOrCreateTlsMaterial({}, dir, ['localhost']);
    return { context: createSecureContext({ cert, key }), pem: { cert, key }, serverEndPoint: Buffer.alloc(32) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Records what server-side TLS sockets are asked to write while `f` runs. */
async function recordingTlsWrites(f: (writes: string[]) => Promise<void>): Promise<void> {
  const writes: string[] = [];
  const original = TLSSocket.prototype.write;
  TLSSocket.prototype.write = function (this: TLSSocket, ...args: Parameters<TLSSocket['write']>) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the server side only
    if ((this as any)._tlsOptions?.isServer) writes.push(String(args[0]));
    return original.apply(this, args);
  } as TLSSocket['write'];
  try {
    await f(writes);
  } finally {
    TLSSocket.prototype.write = original;
  }
}

// The first answer after a TLS handshake must not join OpenSSL's session tickets in Node's 1 KiB
// TLS output buffer (a 16 KiB one would be added and kept for the connection's life: bench/memory).
test('after STARTTLS, the first write waits for the event loop\'s I/O, later ones only for the end of the tick', async () => {
  const tls = await tlsSettings();
  const { server, client: raw, socket } = await loopback();
  const transport = new TcpTransport(socket, tls);
  transport.setHandler({ data: () => undefined, closed: () => undefined });
  await recordingTlsWrites(async (writes) => {
    const upgraded = transport.startTls();
    const client = tlsConnect({ socket: raw, servername: 'localhost', rejectUnauthorized: false });
    let text = '';
    client.setEncoding('utf8');
    client.on('data', (d: string) => (text += d));
    try {
      await upgraded;
      assert.equal(transport.secure, true);
      transport.write('<a/>');
      await nextTick();
      assert.deepEqual(writes, [], 'not at the end of the tick that finished the handshake');
      await immediate();
      assert.deepEqual(writes, ['<a/>'], 'but once the loop has done its I/O');
      transport.write('<b/>');
      await nextTick();
      assert.deepEqual(writes, ['<a/>', '<b/>'], 'the next write leaves at the end of its tick');
      await until(() => text === '<a/><b/>', 'both at the client');
    } finally {
      client.destroy();
      server.close();
    }
  });
});

test('direct TLS: the first write after the handshake also waits for the event loop\'s I/O', async () => {
  const tls = await tlsSettings();
  const server = createTlsServer({ ...tls.pem });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'secureConnection');
  const client = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false });
  await recordingTlsWrites(async (writes) => {
    try {
      const [socket] = (await accepted) as [TLSSocket];
      const transport = new TcpTransport(socket, tls, true);
      transport.setHandler({ data: () => undefined, closed: () => undefined });
      transport.write('<a/>');
      await nextTick();
      assert.deepEqual(writes, []);
      await immediate();
      assert.deepEqual(writes, ['<a/>']);
    } finally {
      client.destroy();
      server.close();
    }
  });
});

test('once the peer has closed, nothing keeps the ended transport: its linger timer goes with the socket', async () => {
  // end() armed a 5 s timer to destroy a socket whose peer never closes; it was never cleared,
  // and through the transport's handler it kept each closed connection and its session.
  const ended = async (): Promise<{ ref: WeakRef<object>; server: Server; client: Socket }> => {
    const { server, client, socket } = await loopback();
    const handler = { data: () => undefined, closed: () => undefined };
    const transport = new TcpTransport(socket, undefined);
    transport.setHandler(handler);
    const closed = once(socket, 'close');
    client.on('end', () => client.end());
    transport.end();
    await closed;
    return { ref: new WeakRef(handler), server, client };
  };
  const { ref, server, client } = await ended();
  try {
    assert.equal(await collected(ref), true);
  } finally {
    client.destroy();
    server.close();
  }
});
