#!/usr/bin/python3
"""One scripted slixmpp session against a Shoal server, for the integration tests.

Connects with STARTTLS (verifying the server certificate against --ca), logs in
with SASL (optionally one mechanism only, via the feature_mechanisms plugin's
use_mech setting), binds, sends initial presence, pings the server (XEP-0199),
sends a chat message to --peer and waits for its reply, gets the roster, and
disconnects. Every step is printed to stdout as one JSON object per line; the
last line is {"event": "done", "ok": true|false}. Exits 0 only when every step
succeeded, 1 on any failure, 2 on the overall --timeout.

Run it with the system interpreter (/usr/bin/python3), which has Debian's
python3-slixmpp.
"""

import argparse
import asyncio
import base64
import ssl
import sys
from pathlib import Path

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

# The tests run this with /usr/bin/python3 from any working directory: common.py sits beside it.
sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_login_args, emit, plugin_config, run  # noqa: E402

NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'


class Failed(Exception):
    pass


class Session(slixmpp.ClientXMPP):
    def __init__(self, args, done):
        super().__init__(args.jid, args.password, plugin_config=plugin_config(args))
        if args.token:
            # X-OAUTH2 takes its secret from credentials['access_token'], not the password.
            self.credentials['access_token'] = args.token
        self.args = args
        self.done = done
        self.reply = None
        self.tls_reported = False
        self.gone = asyncio.get_running_loop().create_future()
        self.register_plugin('xep_0199')
        if args.ca:
            # Verify the chain and the host name ('localhost', the JID's domain) against this CA only.
            self.ca_certs = Path(args.ca)
        if args.tls_max == '1.2':
            self.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        # The <auth/> element as it goes on the wire: which mechanism the client really sent.
        self.add_filter('out', self.watch_out)
        self.add_event_handler('ssl_invalid_chain', lambda e: self.fail('certificate rejected: %s' % e))
        self.add_event_handler('auth_success', self.on_auth_success)
        self.add_event_handler('failed_auth', self.on_failed_auth)
        self.add_event_handler('failed_all_auth', lambda _: self.fail('no mechanism left to try'))
        self.add_event_handler('connection_failed', lambda e: self.fail('connection failed: %s' % e))
        self.add_event_handler('stream_error', lambda e: self.fail('stream error: %s' % e['condition']))
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('message', self.on_message)
        self.add_event_handler('disconnected', self.on_disconnected)

    def fail(self, message):
        emit('error', message=message)
        if not self.done.done():
            self.done.set_result(False)
        self.disconnect(wait=0.5)

    def watch_out(self, stanza):
        # slixmpp files <auth/> under the stream's default namespace, so match on the local name.
        if stanza.name == 'auth' and stanza.xml.get('mechanism'):
            if not self.tls_reported:
                self.tls_reported = True
                self.report_tls()
            # RFC 5802 §7: the gs2-header (cbind flag and authzid) leads the client-first
            # message; it holds no secret, and shows whether the client asked for binding.
            first = base64.b64decode(stanza.xml.text or '')
            gs2 = b','.join(first.split(b',')[:2]).decode() + ',' if stanza.xml.get('mechanism').startswith('SCRAM') else None
            emit('auth_sent', mechanism=stanza.xml.get('mechanism'), gs2_header=gs2)
        return stanza

    def report_tls(self):
        # After STARTTLS slixmpp keeps the ssl.SSLObject as self.socket.
        sslobj = self.socket
        if not isinstance(sslobj, (ssl.SSLObject, ssl.SSLSocket)):
            self.fail('no TLS before authentication')
            return
        emit('tls', version=sslobj.version(), cipher=sslobj.cipher()[0], verified_with_ca=bool(self.args.ca),
             peer_cert_subject=dict(x[0] for x in sslobj.getpeercert().get('subject', ())) if self.args.ca else None)

    def on_auth_success(self, _stanza):
        emit('auth', mechanism=self['feature_mechanisms'].mech.name)

    def on_failed_auth(self, stanza):
        emit('auth_failed', mechanism=self['feature_mechanisms'].mech.name, condition=stanza['condition'],
             text=stanza['text'])

    async def on_session_start(self, _event):
        try:
            await self.run_steps()
        except Failed as e:
            self.fail(str(e))
        except (IqError, IqTimeout) as e:
            self.fail('%s: %s' % (type(e).__name__, getattr(e, 'iq', None)))
        except Exception as e:  # noqa: BLE001 -- any surprise is a failed run, reported as such
            self.fail('%s: %s' % (type(e).__name__, e))

    async def run_steps(self):
        emit('bound', jid=str(self.boundjid))
        # RFC 6121 §4.2: initial presence.
        self.send_presence()
        emit('presence_sent')

        # XEP-0199 §4.2. send_ping, not ping(): ping() counts an error reply from
        # our own server as success, which would hide a broken server.
        domain = self.boundjid.domain
        pong = await self['xep_0199'].send_ping(domain, timeout=5)
        if pong['type'] != 'result':
            raise Failed('ping answered with %s' % pong)
        emit('ping', type=pong['type'], **{'from': str(pong['from'])})

        # A chat message to the peer, and its reply.
        self.reply = asyncio.get_running_loop().create_future()
        self.send_message(mto=self.args.peer, mbody=self.args.body, mtype='chat')
        emit('message_sent', to=self.args.peer, body=self.args.body)
        msg = await asyncio.wait_for(self.reply, timeout=self.args.reply_timeout)
        emit('reply', **{'from': str(msg['from']), 'to': str(msg['to'])}, body=msg['body'], type=msg['type'])

        # RFC 6121 §2.1.3 (with §2.6 versioning when the server announces it).
        roster = await self.get_roster(timeout=5)
        if roster['type'] != 'result':
            raise Failed('roster get answered with %s' % roster)
        query = roster.xml.find('{jabber:iq:roster}query')
        emit('roster', ver=query.get('ver') if query is not None else None,
             items=len(query) if query is not None else 0, rosterver_feature='rosterver' in self.features)

        if not self.done.done():
            self.done.set_result(True)
        await self.disconnect(wait=2)

    def on_message(self, msg):
        if self.reply is not None and not self.reply.done() and msg['type'] in ('chat', 'normal') and msg['body']:
            self.reply.set_result(msg)

    def on_disconnected(self, reason):
        emit('disconnected', reason=str(reason) if reason else None)
        if not self.gone.done():
            self.gone.set_result(True)
        if not self.done.done():
            self.done.set_result(False)
            emit('error', message='disconnected before finishing')


async def main(args):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    xmpp = Session(args, done)
    if args.direct_tls:
        # XEP-0368: TLS from the first byte, no STARTTLS.
        xmpp.connect((args.host, args.port), use_ssl=True, force_starttls=False)
    else:
        xmpp.connect((args.host, args.port), force_starttls=True)
    emit('connecting', host=args.host, port=args.port, mech=args.mech)
    try:
        ok = await asyncio.wait_for(asyncio.shield(done), timeout=args.timeout)
    except asyncio.TimeoutError:
        emit('error', message='overall timeout of %ss' % args.timeout)
        emit('done', ok=False)
        return 2
    # Wait for the stream to be closed both ways before reporting.
    try:
        await asyncio.wait_for(asyncio.shield(xmpp.gone), timeout=3)
    except asyncio.TimeoutError:
        emit('error', message='did not disconnect')
        ok = False
    emit('done', ok=ok)
    return 0 if ok else 1


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_login_args(p)
    p.add_argument('--peer', required=True, help='JID to send the message to; it must reply')
    p.add_argument('--body', default='hello from slixmpp')
    p.add_argument('--reply-timeout', type=float, default=5, help='seconds the peer has to reply')
    p.add_argument('--token', help='access token for X-OAUTH2')
    p.add_argument('--tls-max', choices=['1.2', '1.3'], default='1.3')
    p.add_argument('--timeout', type=float, default=15)
    p.add_argument('--direct-tls', action='store_true', help='connect with TLS from the first byte (XEP-0368)')
    return p.parse_args()


if __name__ == '__main__':
    args = parse_args()

    def report_hard_timeout():
        emit('error', message='hard timeout')
        emit('done', ok=False)
    run(main, args, int(args.timeout) + 5, report_hard_timeout)
