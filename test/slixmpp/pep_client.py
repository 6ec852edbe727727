#!/usr/bin/python3
"""im_client.py with slixmpp's PEP plugins, for the XEP-0163 tests.

Everything im_client.py does, plus, with slixmpp's own plugins (xep_0060, xep_0163,
xep_0115, xep_0084, xep_0223, xep_0049, xep_0048):

  notify         {"nodes": [...]}: xep_0163.add_interest for each node (XEP-0115
                 caps then carry NODE+notify), waiting for the new caps
  publish        {"node", "xml", "item_id"?, "options"?: {field: value}}: xep_0060.publish,
                 with a publish-options form when options are given; -> {"item_id"}
  items          {"jid", "node", "max"?, "ids"?}: xep_0060.get_items -> {"items": [{"id", "xml"}]}
  retract        {"node", "item_id", "notify"}: xep_0060.retract
  private_store  {"node", "item_id", "xml"}: XEP-0223 (xep_0223.store, whitelist + persist)
  private_get    {"node"}: xep_0223.retrieve -> {"items": [...]}
  bookmarks_set  {"conferences": [{"jid", "name", "nick", "autojoin"}]}: XEP-0048 through
                 XEP-0049 (xep_0048.set_bookmarks, method xep_0049)
  bookmarks_get  xep_0048.get_bookmarks through XEP-0049 -> {"conferences": [...]}
  xml_store      {"xml"}: xep_0049.store of an element
  xml_get        {"xml"}: jabber:iq:private get of that (empty) element -> {"xml"}
  avatar         {"data_b64", "type"}: xep_0084.publish_avatar then publish_avatar_metadata

and, for every PEP event slixmpp's xep_0060 plugin raised (pubsub_publish,
pubsub_retract), a stanza event of kind "pep":

  {"event": "stanza", "kind": "pep", "op": "publish"|"retract", "from", "to", "node", "item_id", "xml"}
"""

import base64
import hashlib
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import im_client  # noqa: E402
from common import emit, run  # noqa: E402
from slixmpp.xmlstream import ElementBase  # noqa: E402

ET = im_client.ET


def element(xml):
    """An ElementBase wrapping parsed XML, as the plugins take payloads."""
    return ElementBase(xml=ET.fromstring(xml))


class PepSession(im_client.Session):
    def __init__(self, args):
        super().__init__(args)
        for plugin in ('xep_0004', 'xep_0060', 'xep_0115', 'xep_0163', 'xep_0084', 'xep_0223', 'xep_0049', 'xep_0048'):
            self.register_plugin(plugin)
        self.add_event_handler('pubsub_publish', lambda msg: self.report_event('publish', msg))
        self.add_event_handler('pubsub_retract', lambda msg: self.report_event('retract', msg))

    def report_event(self, op, msg):
        # Read from the XML: iterating the stanza object here would share (and reset) the
        # position of the xep_0060 plugin's own loop over the same items, which raises this event.
        items = msg.xml.find('{http://jabber.org/protocol/pubsub#event}event/{http://jabber.org/protocol/pubsub#event}items')
        for child in items:
            if child.tag.split('}')[-1] != op and not (op == 'publish' and child.tag.endswith('}item')):
                continue
            emit('stanza', kind='pep', op=op, node=items.get('node'), item_id=child.get('id'), xml=str(msg),
                 **{'from': str(msg['from']), 'to': str(msg['to'])})

    def form(self, fields):
        form = self['xep_0004'].make_form(ftype='submit')
        form.add_field(var='FORM_TYPE', ftype='hidden', value='http://jabber.org/protocol/pubsub#publish-options')
        for var, value in fields.items():
            form.add_field(var=var, value=value)
        return form

    async def cmd_notify(self, c):
        for node in c['nodes']:
            self['xep_0030'].add_feature('%s+notify' % node)
        await self['xep_0115'].update_caps(broadcast=False)

    async def cmd_publish(self, c):
        options = self.form(c['options']) if c.get('options') else None
        iq = await self['xep_0060'].publish(None, c['node'], id=c.get('item_id'), payload=ET.fromstring(c['xml']),
                                            options=options, timeout=5)
        return {'item_id': iq['pubsub']['publish']['item']['id'] or None}

    async def cmd_items(self, c):
        iq = await self['xep_0060'].get_items(c['jid'], c['node'], item_ids=c.get('ids'),
                                              max_items=c.get('max'), timeout=5)
        return {'items': [{'id': i['id'], 'xml': ''.join(ET.tostring(ch, encoding='unicode') for ch in i.xml)}
                          for i in iq['pubsub']['items']]}

    async def cmd_retract(self, c):
        await self['xep_0060'].retract(None, c['node'], c['item_id'], notify=c.get('notify'), timeout=5)

    async def cmd_private_store(self, c):
        await self['xep_0223'].store(element(c['xml']), node=c['node'], id=c['item_id'], timeout=5)

    async def cmd_private_get(self, c):
        iq = await self['xep_0223'].retrieve(c['node'], timeout=5)
        return {'items': [{'id': i['id'], 'xml': ''.join(ET.tostring(ch, encoding='unicode') for ch in i.xml)}
                          for i in iq['pubsub']['items']]}

    async def cmd_bookmarks_set(self, c):
        bookmarks = self['xep_0048'].stanza.Bookmarks()
        for conf in c['conferences']:
            bookmarks.add_conference(conf['jid'], conf.get('nick'), name=conf.get('name'), autojoin=conf.get('autojoin'))
        await self['xep_0048'].set_bookmarks(bookmarks, method='xep_0049', timeout=5)

    async def cmd_bookmarks_get(self, _c):
        iq = await self['xep_0048'].get_bookmarks(method='xep_0049', timeout=5)
        return {'conferences': [{'jid': str(conf['jid']), 'name': conf['name'] or None, 'nick': conf['nick'] or None,
                                 'autojoin': conf['autojoin']}
                                for conf in iq['private']['bookmarks']['conferences']]}

    async def cmd_xml_store(self, c):
        await self['xep_0049'].store(element(c['xml']), timeout=5)

    async def cmd_xml_get(self, c):
        iq = self.make_iq_get()
        query = ET.SubElement(iq.xml, '{jabber:iq:private}query')
        query.append(ET.fromstring(c['xml']))
        result = await iq.send(timeout=5)
        stored = result.xml.find('{jabber:iq:private}query')
        return {'xml': ''.join(ET.tostring(ch, encoding='unicode') for ch in stored)}

    async def cmd_avatar(self, c):
        data = base64.b64decode(c['data_b64'])
        await self['xep_0084'].publish_avatar(data, timeout=5)
        ident = hashlib.sha1(data).hexdigest()
        await self['xep_0084'].publish_avatar_metadata([{'id': ident, 'type': c['type'], 'bytes': len(data)}], timeout=5)
        return {'item_id': ident}


im_client.Session = PepSession

if __name__ == '__main__':
    args = im_client.parse_args()
    run(im_client.main, args, args.lifetime, lambda: emit('fatal', message='lifetime exceeded'))
