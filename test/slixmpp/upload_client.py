#!/usr/bin/python3
"""Uploads a file with slixmpp's XEP-0363 plugin, for test/upload-slixmpp.test.ts.

Logs in with STARTTLS (verifying against --ca), finds the upload service through
disco (items of the server, then the info with identity store/file and the
max-file-size form; see discover()), and lets xep_0363.upload_file request a slot
and PUT the file with aiohttp,
then sends the GET URL to --peer in a message with an XEP-0066 out-of-band element,
as clients share files. Events, one JSON object per line on stdout:

  {"event": "uploaded", "url", "service", "max_file_size"}
  {"event": "error", "message"}      {"event": "done", "ok"}
"""

import argparse
import asyncio
import sys
from pathlib import Path

import slixmpp

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_login_args, emit, plugin_config, run  # noqa: E402


class Session(slixmpp.ClientXMPP):
    def __init__(self, args, done):
        super().__init__(args.jid, args.password, plugin_config=plugin_config(args))
        self.args = args
        self.done = done
        for plugin in ('xep_0030', 'xep_0066', 'xep_0363'):
            self.register_plugin(plugin)
        if args.ca:
            self.ca_certs = Path(args.ca)
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('failed_all_auth', lambda _: self.finish(False, 'authentication failed'))
        self.add_event_handler('connection_failed', lambda e: self.finish(False, 'connection failed: %s' % e))
        self.add_event_handler('disconnected', lambda _: self.finish(False, 'disconnected before finishing'))

    def finish(self, ok, message=None):
        if message:
            emit('error', message=message)
        if not self.done.done():
            self.done.set_result(ok)

    async def discover(self):
        """What xep_0363.find_upload_service does, step by step: slixmpp 1.8.3's
        xep_0030.get_info_from_domain passes coroutines to asyncio.wait, which Python 3.11
        refuses (TypeError), so the plugin's own discovery cannot run here. The server's
        disco#items, then each item's disco#info: identity store/file, the feature, and
        max-file-size from the urn:xmpp:http:upload:0 form (XEP-0363 §2)."""
        items = await self['xep_0030'].get_items(jid=self.boundjid.domain, timeout=5)
        for jid, _node, _name in items['disco_items']['items']:
            info = await self['xep_0030'].get_info(jid=jid, timeout=5)
            identities = [(i[0], i[1]) for i in info['disco_info']['identities']]
            if ('store', 'file') not in identities or 'urn:xmpp:http:upload:0' not in info['disco_info']['features']:
                continue
            plugin = self['xep_0363']
            plugin.upload_service = info['from']
            for form in info['disco_info'].iterables:
                values = form['values']
                if values['FORM_TYPE'] == ['urn:xmpp:http:upload:0']:
                    plugin.max_file_size = int(values['max-file-size'])
            return
        raise RuntimeError('no upload service in disco#items of %s' % self.boundjid.domain)

    async def on_session_start(self, _event):
        try:
            self.send_presence()
            await self.discover()
            url = await self['xep_0363'].upload_file(Path(self.args.file), content_type=self.args.type, timeout=10)
            emit('uploaded', url=url, service=str(self['xep_0363'].upload_service),
                 max_file_size=self['xep_0363'].max_file_size)
            msg = self.make_message(mto=self.args.peer, mbody=url, mtype='chat')
            msg['oob']['url'] = url
            msg.send()
            self.finish(True)
            await self.disconnect(wait=2)
        except Exception as e:  # noqa: BLE001 -- any surprise is a failed run, reported as such
            self.finish(False, '%s: %s' % (type(e).__name__, e))
            self.disconnect(wait=0.5)


async def main(args):
    done = asyncio.get_running_loop().create_future()
    xmpp = Session(args, done)
    xmpp.connect((args.host, args.port), force_starttls=True)
    try:
        ok = await asyncio.wait_for(asyncio.shield(done), timeout=args.timeout)
    except asyncio.TimeoutError:
        emit('error', message='overall timeout of %ss' % args.timeout)
        ok = False
    emit('done', ok=ok)
    return 0 if ok else 1


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_login_args(p)
    p.add_argument('--peer', required=True, help='JID the GET URL is sent to')
    p.add_argument('--file', required=True)
    p.add_argument('--type', help='content type (default: guessed from the name)')
    p.add_argument('--timeout', type=float, default=15)
    return p.parse_args()


if __name__ == '__main__':
    args = parse_args()
    run(main, args, args.timeout + 10, lambda: emit('error', message='hard timeout'))
