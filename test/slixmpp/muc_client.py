#!/usr/bin/python3
"""im_client.py with slixmpp's multi-user chat plugins, for the MUC tests.

Everything im_client.py does (every stanza received is reported), plus these
commands, each through the plugin's own API:

  muc_join        xep_0045 join_muc_wait (room, nick, optional password and
                  maxstanzas): {"self": <own presence>, "occupants": [nicks],
                  "history": [bodies], "subject": ...}; a presence error is a
                  failed result with its condition
  muc_instant     xep_0045 set_room_config with an empty submitted form
                  (XEP-0045 §10.1.2 instant room)
  muc_send        a groupchat message (xep_0045's make_message, type groupchat)
  muc_leave       xep_0045 leave_muc
  muc_roster      xep_0045 get_roster: the nicks the plugin tracks as present
  muc_jid         xep_0045 get_jid_property(room, nick, 'jid'): the real JID the
                  plugin learnt for an occupant ('' when the room hid it)
  muc_affiliation xep_0045 set_affiliation (jid, affiliation)
  muc_role        xep_0045 set_role (nick, role)
  muc_list        xep_0045 get_affiliation_list
  muc_invite      xep_0249 send_invitation (a direct invitation)
  muc_moderate    xep_0425 moderate (version 0 of message moderation)
  muc_self_ping   an XEP-0199 ping to one's own occupant JID (XEP-0410)
  muc_configure   xep_0045 set_room_config with a submitted muc#roomconfig form
                  of the given fields
  mam_room        xep_0313 retrieve at a room JID: {"messages": [{"id", "from",
                  "body"}]} (a tombstone has body null and "retracted" true)
"""

import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import im_client  # noqa: E402
from common import emit, run  # noqa: E402
from slixmpp import JID  # noqa: E402
from slixmpp.exceptions import PresenceError  # noqa: E402


class MucSession(im_client.Session):
    def __init__(self, args):
        super().__init__(args)
        for plugin in ('xep_0004', 'xep_0045', 'xep_0199', 'xep_0249', 'xep_0313', 'xep_0359', 'xep_0421', 'xep_0425'):
            self.register_plugin(plugin)
        self.add_event_handler('groupchat_direct_invite',
                               lambda msg: emit('direct_invite', room=str(msg['groupchat_invite']['jid']),
                                                **{'from': str(msg['from'])}))

    async def cmd_muc_join(self, c):
        kwargs = {'timeout': 5}
        if c.get('password') is not None:
            kwargs['password'] = c['password']
        if c.get('maxstanzas') is not None:
            kwargs['maxstanzas'] = c['maxstanzas']
        try:
            pres, subject, occupants, history = await self['xep_0045'].join_muc_wait(JID(c['room']), c['nick'], **kwargs)
        except PresenceError as e:
            raise im_client.CommandError(e.presence['error']['condition'], e.presence['error']['text'], e.presence['error']['type'])
        codes = sorted(int(s) for s in pres['muc']['status_codes'])
        return {'self': {'from': str(pres['from']), 'codes': codes, 'affiliation': pres['muc']['affiliation'],
                         'role': pres['muc']['role']},
                'occupants': [p['from'].resource for p in occupants],
                'history': [m['body'] for m in history],
                'subject': subject['subject']}

    async def cmd_muc_instant(self, c):
        form = self['xep_0004'].make_form(ftype='submit')
        await self['xep_0045'].set_room_config(JID(c['room']), form, timeout=5)

    async def cmd_muc_send(self, c):
        msg = self.make_message(mto=c['room'], mbody=c['body'], mtype='groupchat')
        if c.get('msg_id'):
            msg['id'] = c['msg_id']
        msg.send()

    async def cmd_muc_leave(self, c):
        self['xep_0045'].leave_muc(JID(c['room']), c['nick'], c.get('status', ''))

    async def cmd_muc_roster(self, c):
        return {'nicks': sorted(self['xep_0045'].get_roster(JID(c['room'])))}

    async def cmd_muc_jid(self, c):
        jid = self['xep_0045'].get_jid_property(JID(c['room']), c['nick'], 'jid')
        return {'jid': str(jid) if jid else ''}

    async def cmd_muc_affiliation(self, c):
        await self['xep_0045'].set_affiliation(JID(c['room']), c['affiliation'], jid=JID(c['jid']), timeout=5)

    async def cmd_muc_role(self, c):
        await self['xep_0045'].set_role(JID(c['room']), c['nick'], c['role'], reason=c.get('reason'), timeout=5)

    async def cmd_muc_list(self, c):
        jids = await self['xep_0045'].get_affiliation_list(JID(c['room']), c['affiliation'], timeout=5)
        return {'jids': sorted(str(j) for j in jids)}

    async def cmd_muc_invite(self, c):
        self['xep_0249'].send_invitation(JID(c['to']), JID(c['room']), reason=c.get('reason'))

    async def cmd_muc_moderate(self, c):
        await self['xep_0425'].moderate(JID(c['room']), c['stanza_id'], c.get('reason', ''), timeout=5)

    async def cmd_muc_self_ping(self, c):
        await self['xep_0199'].send_ping(JID(c['jid']), timeout=5)


    async def cmd_muc_configure(self, c):
        form = self['xep_0004'].make_form(ftype='submit')
        form.add_field(var='FORM_TYPE', ftype='hidden', value='http://jabber.org/protocol/muc#roomconfig')
        for var, value in c['fields'].items():
            form.add_field(var=var, value=value)
        await self['xep_0045'].set_room_config(JID(c['room']), form, timeout=5)

    async def cmd_mam_room(self, c):
        iq = await self['xep_0313'].retrieve(jid=JID(c['room']), timeout=5)
        out = []
        for msg in iq['mam']['results']:
            inner = msg['mam_result']['forwarded']['stanza']
            out.append({'id': msg['mam_result']['id'], 'from': str(inner['from']),
                        'body': inner['body'] or None,
                        'retracted': inner.xml.find('{urn:xmpp:message-retract:1}retracted') is not None})
        return {'messages': out}


# im_client's main() builds its own Session; this script's is the one with MUC.
im_client.Session = MucSession

if __name__ == '__main__':
    args = im_client.parse_args()
    run(im_client.main, args, args.lifetime, lambda: emit('fatal', message='lifetime exceeded'))
