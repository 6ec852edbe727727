#!/usr/bin/python3
"""A scriptable slixmpp session for the instant-messaging integration tests.

Logs in (STARTTLS with the certificate verified against --ca, SASL, bind), then
obeys JSON commands read one per line on stdin and reports, one JSON object per
line on stdout:

  {"event": "ready", "jid": ...}                      once the session started
  {"event": "stanza", "kind": "presence"|"message"|"iq", ...}
                                                      every stanza received, as
                                                      slixmpp parsed it (plus its XML)
  {"event": "result", "id": N, "ok": true, ...}       the answer to command N
  {"event": "result", "id": N, "ok": false, "error": {...}}
  {"event": "disconnected"}                           the stream is gone
  {"event": "fatal", "message": ...}                  the login failed

Commands ({"cmd": ..., "id": N, ...}) use slixmpp's own API wherever it has one:
presence, subscribe / approve / deny / unsubscribe (the roster item methods),
send (a message), roster_get (get_roster, with the roster version slixmpp keeps,
optionally set first as a client with persistent storage would), roster_set,
roster_remove, roster_state (slixmpp's own view of its roster and of who is
online), vcard_get / vcard_set (XEP-0054 plugin), block / unblock / blocklist
(XEP-0191 plugin), ping (XEP-0199 plugin), csi (XEP-0352 plugin: "state" active or
inactive), disconnect (closes the stream, after
unavailable presence when "unavailable" is true), and kill (the socket is reset
with nothing sent: an abrupt disconnect).

Run it with the system interpreter (/usr/bin/python3), which has Debian's
python3-slixmpp (1.8).
"""

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

# The tests run this with /usr/bin/python3 from any working directory: common.py sits beside it.
sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_login_args, emit, plugin_config, run  # noqa: E402

NS_ROSTER = 'jabber:iq:roster'
NS_VCARD = 'vcard-temp'
NS_VCARD_UPDATE = 'vcard-temp:x:update'
NS_BLOCKING = 'urn:xmpp:blocking'
NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors'


def text_or_none(value):
    return value if value else None


class CommandError(Exception):
    def __init__(self, condition, text=None, etype=None):
        super().__init__(condition)
        self.condition = condition
        self.text = text
        self.etype = etype


def roster_items(query):
    """The <item/>s of a roster query, read with slixmpp's roster stanza interface."""
    out = []
    for jid, item in query['items'].items():
        out.append({
            'jid': str(jid),
            'subscription': item['subscription'] or 'none',
            'ask': text_or_none(item['ask']),
            'name': text_or_none(item['name']),
            'groups': sorted(item['groups']),
            'approved': text_or_none(item['approved']),
        })
    return out


class Session(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password, plugin_config=plugin_config(args))
        self.args = args
        self.answer_children = {}
        if args.ca:
            self.ca_certs = Path(args.ca)
        # The tests decide every answer to a subscription request themselves
        # (slixmpp approves and subscribes back on its own by default).
        self.auto_authorize = None
        self.auto_subscribe = False
        for plugin in ('xep_0030', 'xep_0054', 'xep_0191', 'xep_0199', 'xep_0203'):
            self.register_plugin(plugin)
        # XEP-0352: enabled when the server offers the stream feature.
        self.register_plugin('xep_0352')
        self.add_filter('in', self.report_incoming)
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('disconnected', lambda _reason: emit('disconnected'))
        self.add_event_handler('ssl_invalid_chain', lambda e: self.fatal('certificate rejected: %s' % e))
        self.add_event_handler('failed_all_auth', lambda _: self.fatal('authentication failed'))
        self.add_event_handler('connection_failed', lambda e: self.fatal('connection failed: %s' % e))
        self.add_event_handler('stream_error', lambda e: emit('stream_error', condition=e['condition']))

    def fatal(self, message):
        emit('fatal', message=message)
        os._exit(3)

    async def on_session_start(self, _event):
        emit('ready', jid=str(self.boundjid), rosterver='rosterver' in self.features,
             preapproval='preapproval' in self.features)

    # --- What arrives ------------------------------------------------------------------

    def report_incoming(self, stanza):
        """Reports every stanza as slixmpp parsed it, before slixmpp's handlers act on it."""
        name = stanza.xml.tag.split('}')[-1]
        if name not in ('presence', 'message', 'iq'):
            return stanza
        if name == 'iq' and stanza.xml.get('type') in ('result', 'error'):
            # What the answer held on the wire: slixmpp's handlers create a missing <query/>
            # as soon as they look at iq['roster'], which would hide an empty result.
            self.answer_children[stanza.xml.get('id')] = [child.tag for child in stanza.xml]
        try:
            fields = self.describe(name, stanza)
        except Exception as e:  # noqa: BLE001 -- a report must never break the stream
            fields = {'describe_error': '%s: %s' % (type(e).__name__, e)}
        emit('stanza', kind=name, xml=str(stanza), **fields)
        return stanza

    def describe(self, name, stanza):
        out = {
            'type': text_or_none(stanza['type']) if name != 'presence' else text_or_none(stanza.xml.get('type')),
            'from': text_or_none(str(stanza['from'])),
            'to': text_or_none(str(stanza['to'])),
            'id': text_or_none(stanza['id']),
        }
        if stanza.xml.find('{%s}error' % stanza.namespace) is not None:
            err = stanza['error']
            out['error'] = {'condition': err['condition'], 'type': err['type'],
                            'blocked': err.xml.find('{%s}blocked' % NS_BLOCKING_ERRORS) is not None}
        if name == 'presence':
            out['show'] = text_or_none(stanza['show'])
            out['status'] = text_or_none(stanza['status'])
            out['priority'] = stanza['priority']
            update = stanza.xml.find('{%s}x' % NS_VCARD_UPDATE)
            if update is not None:
                photo = update.find('{%s}photo' % NS_VCARD_UPDATE)
                out['photo'] = (photo.text or '') if photo is not None else None
        elif name == 'message':
            out['body'] = text_or_none(stanza['body'])
            if stanza.xml.find('{urn:xmpp:delay}delay') is not None:
                # XEP-0203 through slixmpp's plugin: a parsed timestamp.
                delay = stanza['delay']
                out['delay'] = {'stamp': delay['stamp'].isoformat() if delay['stamp'] else None,
                                'from': str(delay['from']) if delay['from'] else None,
                                'text': text_or_none(delay['text'])}
        elif name == 'iq':
            if stanza.xml.find('{%s}query' % NS_ROSTER) is not None:
                out['roster'] = {'ver': stanza.xml.find('{%s}query' % NS_ROSTER).get('ver'),
                                 'items': roster_items(stanza['roster'])}
            for op in ('block', 'unblock'):
                el = stanza.xml.find('{%s}%s' % (NS_BLOCKING, op))
                if el is not None:
                    out['blocking'] = {'op': op, 'jids': sorted(str(j) for j in stanza[op]['items'])}
        return out

    # --- Commands ------------------------------------------------------------------------

    async def run_command(self, cmd):
        ident = cmd.get('id')
        try:
            result = await getattr(self, 'cmd_' + cmd['cmd'])(cmd)
            emit('result', id=ident, ok=True, **(result or {}))
        except IqError as e:
            err = e.iq['error']
            emit('result', id=ident, ok=False, error={
                'condition': err['condition'], 'type': err['type'], 'text': text_or_none(err['text']),
                'blocked': err.xml.find('{%s}blocked' % NS_BLOCKING_ERRORS) is not None})
        except IqTimeout:
            emit('result', id=ident, ok=False, error={'condition': 'client-timeout'})
        except CommandError as e:
            emit('result', id=ident, ok=False, error={'condition': e.condition, 'text': e.text})
        except Exception as e:  # noqa: BLE001 -- reported to the test, which fails on it
            emit('result', id=ident, ok=False, error={'condition': 'client-exception', 'text': '%s: %s' % (type(e).__name__, e)})

    async def cmd_presence(self, c):
        priority = c.get('priority')
        self.send_presence(pshow=c.get('show'), pstatus=c.get('status'), ppriority=priority,
                           pto=c.get('to'), ptype=c.get('type'))

    async def cmd_subscribe(self, c):
        self.client_roster[c['jid']].subscribe()

    async def cmd_approve(self, c):
        self.client_roster[c['jid']].authorize()

    async def cmd_deny(self, c):
        self.client_roster[c['jid']].unauthorize()

    async def cmd_unsubscribe(self, c):
        self.client_roster[c['jid']].unsubscribe()

    async def cmd_send(self, c):
        msg = self.make_message(mto=c['to'], mbody=c.get('body'), mtype=c.get('type', 'chat'))
        if c.get('msg_id'):
            msg['id'] = c['msg_id']
        msg.send()

    async def cmd_roster_get(self, c):
        # RFC 6121 §2.6.2: a client that kept a roster sends the version it has; slixmpp
        # sends whatever client_roster.version holds when the server offers versioning.
        if c.get('ver') is not None:
            self.client_roster.version = c['ver']
        sent_ver = self.client_roster.version if 'rosterver' in self.features else None
        iq = await self.get_roster(timeout=5)
        on_wire = self.answer_children.pop(iq['id'], [])
        query = iq.xml.find('{%s}query' % NS_ROSTER) if '{%s}query' % NS_ROSTER in on_wire else None
        return {'sent_ver': sent_ver, 'empty': query is None,
                'ver': query.get('ver') if query is not None else None,
                'items': roster_items(iq['roster']) if query is not None else []}

    async def cmd_roster_set(self, c):
        await self.update_roster(c['jid'], name=c.get('name'), groups=c.get('groups', []), timeout=5)

    async def cmd_roster_remove(self, c):
        await self.del_roster_item(c['jid'])

    async def cmd_roster_state(self, _c):
        """slixmpp's own roster model, built from the pushes and presence it processed."""
        roster = self.client_roster
        items = {}
        for jid in roster:
            item = roster[jid]
            items[str(jid)] = {
                'subscription': item['subscription'],
                'pending_out': bool(item['pending_out']),
                'name': text_or_none(item['name']),
                'groups': sorted(item['groups']),
                'resources': {res: {'show': text_or_none(p.get('show')), 'status': text_or_none(p.get('status'))}
                              for res, p in item.resources.items()},
            }
        return {'ver': roster.version, 'items': items}

    async def cmd_vcard_get(self, c):
        iq = await self['xep_0054'].get_vcard(c.get('jid'), local=False, cached=False, timeout=5)
        vcard = iq['vcard_temp']
        photo = iq.xml.find('{%s}vCard/{%s}PHOTO/{%s}BINVAL' % (NS_VCARD, NS_VCARD, NS_VCARD))
        nicknames = vcard['NICKNAME']
        return {'fn': text_or_none(vcard['FN']), 'nickname': ','.join(nicknames) if nicknames else None,
                'photo': photo.text.strip() if photo is not None and photo.text else None,
                'from': text_or_none(str(iq['from']))}

    async def cmd_vcard_set(self, c):
        vcard = self['xep_0054'].make_vcard()
        if c.get('fn'):
            vcard['FN'] = c['fn']
        if c.get('nickname'):
            vcard['NICKNAME'] = c['nickname']
        if c.get('photo'):
            photo = ET.SubElement(vcard.xml, '{%s}PHOTO' % NS_VCARD)
            ET.SubElement(photo, '{%s}TYPE' % NS_VCARD).text = c['photo']['type']
            ET.SubElement(photo, '{%s}BINVAL' % NS_VCARD).text = c['photo']['base64']
        await self['xep_0054'].publish_vcard(vcard, jid=c.get('jid'), timeout=5)

    async def cmd_block(self, c):
        await self['xep_0191'].block(c['jids'], timeout=5)

    async def cmd_unblock(self, c):
        await self['xep_0191'].unblock(c['jids'], timeout=5)

    async def cmd_blocklist(self, _c):
        iq = await self['xep_0191'].get_blocked(timeout=5)
        return {'jids': sorted(str(j) for j in iq['blocklist']['items'])}

    async def cmd_ping(self, _c):
        pong = await self['xep_0199'].send_ping(self.boundjid.domain, timeout=5)
        if pong['type'] != 'result':
            raise CommandError('ping-failed', str(pong))

    async def cmd_csi(self, c):
        # XEP-0352 §4.2 through slixmpp's plugin, which sends nothing unless the feature was offered.
        csi = self['xep_0352']
        if not csi.enabled:
            raise CommandError('csi-not-offered')
        if c['state'] == 'inactive':
            csi.send_inactive()
        else:
            csi.send_active()

    async def cmd_disconnect(self, c):
        # RFC 6121 §4.5.1: a client SHOULD send unavailable presence before closing the stream.
        if c.get('unavailable'):
            self.send_presence(ptype='unavailable', pstatus=c.get('status'))
        await self.disconnect(wait=5)

    async def cmd_kill(self, _c):
        # SO_LINGER with a zero timeout turns close() into a TCP reset: no TLS close_notify,
        # no </stream:stream>, no unavailable presence; the server sees a socket error.
        sock = self.transport.get_extra_info('socket')
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        os.close(sock.fileno())
        emit('killed')
        os._exit(0)


async def read_commands(xmpp):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks = set()
    while True:
        line = await reader.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        # One task per command: a test may wait for an event while an IQ is outstanding.
        task = asyncio.ensure_future(xmpp.run_command(cmd))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    # stdin closed: the test is done with this client.
    await asyncio.gather(*tasks, return_exceptions=True)


async def main(args):
    xmpp = Session(args)
    xmpp.connect((args.host, args.port), force_starttls=True)
    await read_commands(xmpp)
    if xmpp.transport is not None:
        await xmpp.disconnect(wait=2)
    return 0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_login_args(p)
    p.add_argument('--lifetime', type=float, default=120, help='hard stop after this many seconds')
    return p.parse_args()


if __name__ == '__main__':
    args = parse_args()
    # A hard stop in case a test forgets this process or the event loop wedges.
    run(main, args, args.lifetime, lambda: emit('fatal', message='lifetime exceeded'))
