#!/usr/bin/python3
"""A slixmpp session with XEP-0198 stream management, for the resumption tests.

Logs in (STARTTLS verified against --ca, SASL, bind), enables stream management
with resumption (slixmpp's xep_0198 plugin), sends initial presence, then obeys
JSON commands, one per line on stdin, and reports JSON events on stdout:

  {"event": "ready", "jid": ...}          the session started (bound, SM enabled)
  {"event": "sm_enabled", "id": ...}      the server's <enabled/>
  {"event": "message", "body": ..., "from": ..., "delayed": bool}
  {"event": "presence", "from": ..., "type": ...}
  {"event": "resumed"}                    a <resumed/> after a reconnection
  {"event": "disconnected"}
  {"event": "stream_error", "condition": ...}

Commands: {"cmd": "drop"} resets the TCP connection with nothing sent (no
</stream:stream>: an abrupt loss, as a phone losing its network), then connects
again: slixmpp resumes the session with the SM-ID it kept. {"cmd": "stop"}
closes the stream cleanly.
"""

import argparse
import asyncio
import json
import socket
import struct
import sys
from pathlib import Path

import slixmpp

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_login_args, emit, plugin_config, run  # noqa: E402


class Session(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password, plugin_config=plugin_config(args))
        self.args = args
        if args.ca:
            self.ca_certs = Path(args.ca)
        # The session (and its SM-ID) survives a lost connection: only a clean stop ends it.
        self.end_session_on_disconnect = False
        for plugin in ('xep_0198', 'xep_0199', 'xep_0203'):
            self.register_plugin(plugin)
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('session_resumed', lambda _e: emit('resumed'))
        self.add_event_handler('sm_enabled', lambda e: emit('sm_enabled', id=e['id']))
        self.add_event_handler('message', self.on_message)
        self.add_event_handler('presence', lambda p: emit('presence', **{'from': str(p['from']), 'type': p['type']}))
        self.add_event_handler('disconnected', lambda _reason: emit('disconnected'))
        self.add_event_handler('stream_error', lambda e: emit('stream_error', condition=e['condition']))
        self.add_event_handler('failed_all_auth', lambda _: emit('fatal', message='authentication failed'))

    async def on_session_start(self, _event):
        self.send_presence()
        emit('ready', jid=str(self.boundjid))

    def on_message(self, msg):
        delayed = msg.xml.find('{urn:xmpp:delay}delay') is not None
        emit('message', body=msg['body'], delayed=delayed, **{'from': str(msg['from'])})

    async def drop(self):
        # SO_LINGER 0: close() sends a TCP reset; no close_notify, no </stream:stream>.
        sock = self.transport.get_extra_info('socket')
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        self.transport.abort()
        emit('dropped')
        await asyncio.sleep(0.2)
        self.connect((self.args.host, self.args.port), force_starttls=True)


async def read_commands(xmpp):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        cmd = json.loads(line)
        if cmd['cmd'] == 'drop':
            await xmpp.drop()
        elif cmd['cmd'] == 'stop':
            xmpp.end_session_on_disconnect = True
            await xmpp.disconnect(wait=5)
            emit('stopped')
            return


async def main(args):
    xmpp = Session(args)
    xmpp.connect((args.host, args.port), force_starttls=True)
    await read_commands(xmpp)
    return 0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_login_args(p)
    p.add_argument('--lifetime', type=float, default=60, help='hard stop after this many seconds')
    return p.parse_args()


if __name__ == '__main__':
    args = parse_args()
    run(main, args, args.lifetime, lambda: emit('fatal', message='lifetime exceeded'))
