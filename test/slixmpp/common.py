"""What client.py and im_client.py share: the JSON event line, the login
arguments, the SASL mechanism choice, and the process's start with a hard stop.

Both scripts put their own directory on sys.path before importing this, since
the tests run them with /usr/bin/python3 from any working directory.
"""

import asyncio
import json
import logging
import os
import signal
import sys


def emit(event, **fields):
    """One event, as one JSON object on one stdout line (the tests read stdout line by line)."""
    print(json.dumps({'event': event, **fields}), flush=True)


def add_login_args(p):
    """The arguments every session needs to log in: where, who, how, and what CA to trust."""
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--mech', help='the one SASL mechanism to use (feature_mechanisms use_mech)')
    p.add_argument('--ca', help='PEM file to verify the server certificate against')
    p.add_argument('--debug', action='store_true', help='slixmpp debug log on stderr')


def plugin_config(args):
    """slixmpp's plugin_config: --mech, when given, is the only mechanism tried."""
    if args.mech:
        return {'feature_mechanisms': {'use_mech': args.mech}}
    return {}


def run(main, args, hard_stop_after, on_hard_stop):
    """Runs main(args) to its exit code, stopping the process hard (exit 2) after
    hard_stop_after seconds in case the event loop itself wedges; on_hard_stop()
    reports it first."""
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL, stream=sys.stderr)

    def hard_timeout(_signum, _frame):
        on_hard_stop()
        os._exit(2)
    signal.signal(signal.SIGALRM, hard_timeout)
    signal.alarm(int(hard_stop_after))
    sys.exit(asyncio.run(main(args)))
