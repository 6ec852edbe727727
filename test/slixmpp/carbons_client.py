#!/usr/bin/python3
"""im_client.py with slixmpp's XEP-0280 plugin, for the Message Carbons tests.

Everything im_client.py does, plus these commands:

  carbons_enable / carbons_disable   the plugin's enable() / disable()
  send_private                       a chat message with <private/> and the
                                     XEP-0334 <no-copy/> hint (XEP-0280 §8)
  server_features                    disco#info of the server (xep_0030 plugin)

and, for every carbon the plugin accepted (its carbon_received / carbon_sent
events, which it raises only for carbons from the account's own bare JID,
XEP-0280 §12), a stanza event of kind "carbon":

  {"event": "stanza", "kind": "carbon", "direction": "received"|"sent",
   "from": ..., "to": ..., "type": ..., "inner": {"from", "to", "id", "body"}}
"""

import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import im_client  # noqa: E402
from common import emit, run  # noqa: E402


def text_or_none(value):
    return value if value else None


class CarbonsSession(im_client.Session):
    def __init__(self, args):
        super().__init__(args)
        self.register_plugin('xep_0297')
        self.register_plugin('xep_0280')
        self.add_event_handler('carbon_received', lambda msg: self.report_carbon('received', msg))
        self.add_event_handler('carbon_sent', lambda msg: self.report_carbon('sent', msg))

    def report_carbon(self, direction, msg):
        inner = msg['carbon_%s' % direction]
        emit('stanza', kind='carbon', direction=direction, xml=str(msg),
             **{'from': str(msg['from']), 'to': str(msg['to']), 'type': text_or_none(msg.xml.get('type')),
                'inner': {'from': str(inner['from']), 'to': str(inner['to']),
                          'id': text_or_none(inner['id']), 'body': text_or_none(inner['body'])}})

    async def cmd_carbons_enable(self, _c):
        await self['xep_0280'].enable(timeout=5)

    async def cmd_carbons_disable(self, _c):
        await self['xep_0280'].disable(timeout=5)

    async def cmd_send_private(self, c):
        msg = self.make_message(mto=c['to'], mbody=c['body'], mtype='chat')
        msg['id'] = c['msg_id']
        msg.enable('carbon_private')
        msg.xml.append(ET.Element('{urn:xmpp:hints}no-copy'))
        msg.send()

    async def cmd_server_features(self, _c):
        iq = await self['xep_0030'].get_info(jid=self.boundjid.domain, local=False, cached=False, timeout=5)
        return {'features': sorted(iq['disco_info']['features'])}


# im_client's main() builds its own Session; this script's is the one with carbons.
im_client.Session = CarbonsSession
ET = im_client.ET

if __name__ == '__main__':
    args = im_client.parse_args()
    run(im_client.main, args, args.lifetime, lambda: emit('fatal', message='lifetime exceeded'))
