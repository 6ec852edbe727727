#!/usr/bin/python3
"""One slixmpp session that uses its own XEP-0313 (and XEP-0441, XEP-0359)
plugins against a Shoal server's archive, for test/mam.test.ts.

After login and initial presence it:

  form       asks for the query form (xep_0313 get_fields)
  forward    pages forward through the messages with --with, --page at a time,
             with the plugin's RSM iterator
  backward   pages backward from the last page with RSM <before/>: the
             iterator's first (last) page, then retrieve() with before=<first>
  unknown    queries after an id that is not in the archive (item-not-found)
  prefs      sets default 'always' with --never in <never/>, then reads them back
  self       sends itself a message carrying a forged <stanza-id/> in its own
             account's name and an <origin-id/>, reports the stanza-ids it
             arrives with, and the id of the last archived message to itself

Each step is one JSON line on stdout; the last is {"event": "done", "ok": ...}.
"""

import argparse
import asyncio
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_login_args, emit, plugin_config, run  # noqa: E402

NS_MAM = 'urn:xmpp:mam:2'
NS_SID = 'urn:xmpp:sid:0'


def page_of(iq):
    """The bodies and archive ids of a page's results, and its <fin/>'s complete flag."""
    results = iq['mam']['results']
    fin = iq.xml.find('{%s}fin' % NS_MAM)
    return {
        'bodies': [r['mam_result']['forwarded']['stanza']['body'] for r in results],
        'ids': [r['mam_result']['id'] for r in results],
        'from': sorted({str(r['from']) for r in results}),
        'stamps': [bool(r['mam_result']['forwarded']['delay']['stamp']) for r in results],
        'complete': fin.get('complete') if fin is not None else None,
    }


class Session(slixmpp.ClientXMPP):
    def __init__(self, args, done):
        super().__init__(args.jid, args.password, plugin_config=plugin_config(args))
        self.args = args
        self.done = done
        self.gone = asyncio.get_running_loop().create_future()
        self.self_message = asyncio.get_running_loop().create_future()
        for p in ('xep_0030', 'xep_0059', 'xep_0297', 'xep_0313', 'xep_0359', 'xep_0441'):
            self.register_plugin(p)
        if args.ca:
            self.ca_certs = Path(args.ca)
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('message', self.on_message)
        self.add_event_handler('disconnected', lambda _r: self.gone.done() or self.gone.set_result(True))
        self.add_event_handler('connection_failed', lambda e: self.finish(False, 'connection failed: %s' % e))

    def finish(self, ok, message=None):
        if message:
            emit('error', message=message)
        if not self.done.done():
            self.done.set_result(ok)

    def on_message(self, msg):
        if msg['body'] == 'note to self' and not self.self_message.done():
            ids = [{'by': e.get('by'), 'id': e.get('id')} for e in msg.xml.findall('{%s}stanza-id' % NS_SID)]
            origin = msg.xml.find('{%s}origin-id' % NS_SID)
            self.self_message.set_result({'stanza_ids': ids, 'origin_id': origin.get('id') if origin is not None else None})

    async def on_session_start(self, _event):
        try:
            self.send_presence()
            await self.steps()
            self.finish(True)
        except Exception as e:  # noqa: BLE001 - any failure is reported, not left to time out
            self.finish(False, 'step failed: %r' % (e,))
        finally:
            self.disconnect(wait=1)

    async def steps(self):
        mam = self['xep_0313']
        peer = JID(self.args.with_jid)
        own = self.boundjid.bare

        form = await mam.get_fields(timeout=5)
        emit('form', fields=[f.get('var') for f in form.xml.findall('{jabber:x:data}field')], type=form['type'])

        pages = []
        async for iq in mam.retrieve(with_jid=peer, iterator=True, rsm={'max': self.args.page}):
            pages.append(page_of(iq))
            if len(pages) > 50:
                break
        emit('forward', pages=pages)

        # The plugin's reverse iterator stops after the first page when the server gives
        # count and index (it applies the forward end test), so it only asks for the last page.
        backward = []
        async for iq in mam.retrieve(with_jid=peer, iterator=True, reverse=True, rsm={'max': self.args.page}):
            backward.append(page_of(iq))
            break
        while backward[-1]['complete'] != 'true' and backward[-1]['ids'] and len(backward) < 50:
            iq = await mam.retrieve(with_jid=peer, rsm={'max': self.args.page, 'before': backward[-1]['ids'][0]}, timeout=5)
            backward.append(page_of(iq))
        emit('backward', pages=backward)

        try:
            await mam.retrieve(rsm={'after': 'no-such-archive-id'}, timeout=5)
            emit('unknown', condition=None)
        except IqError as e:
            emit('unknown', condition=e.iq['error']['condition'], type=e.iq['error']['type'])

        await self['xep_0441'].set_preferences(default='always', always=[], never=[JID(self.args.never)], timeout=5)
        default, always, never = await self['xep_0441'].get_preferences(timeout=5)
        emit('prefs', default=default, always=sorted(str(j) for j in always), never=sorted(str(j) for j in never))

        msg = self.make_message(mto=own, mbody='note to self', mtype='chat')
        forged = ET.SubElement(msg.xml, '{%s}stanza-id' % NS_SID)
        forged.set('by', own)
        forged.set('id', 'forged-by-the-client')
        origin = ET.SubElement(msg.xml, '{%s}origin-id' % NS_SID)
        origin.set('id', 'origin-1')
        msg.send()
        live = await asyncio.wait_for(self.self_message, 5)
        last = None
        async for iq in mam.retrieve(with_jid=JID(own), iterator=True, reverse=True, rsm={'max': 1}):
            last = page_of(iq)
            break
        emit('self', live=live, archived=last)


async def main(args):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    xmpp = Session(args, done)
    xmpp.connect((args.host, args.port), force_starttls=True)
    try:
        ok = await asyncio.wait_for(asyncio.shield(done), timeout=args.timeout)
    except asyncio.TimeoutError:
        emit('error', message='overall timeout of %ss' % args.timeout)
        emit('done', ok=False)
        return 2
    try:
        await asyncio.wait_for(asyncio.shield(xmpp.gone), timeout=3)
    except asyncio.TimeoutError:
        pass
    emit('done', ok=ok)
    return 0 if ok else 1


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_login_args(p)
    p.add_argument('--with', dest='with_jid', required=True, help="the 'with' filter of the paging steps")
    p.add_argument('--never', required=True, help='the JID put in the never list')
    p.add_argument('--page', type=int, default=10)
    p.add_argument('--timeout', type=float, default=30)
    return p.parse_args()


if __name__ == '__main__':
    args = parse_args()
    run(main, args, int(args.timeout) + 5, lambda: (emit('error', message='hard timeout'), emit('done', ok=False)))
