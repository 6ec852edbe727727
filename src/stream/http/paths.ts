// Where the XMPP endpoints are on an HTTP listener.
export const WEBSOCKET_PATH_NAME = '/xmpp-websocket';
export const BOSH_PATH_NAME = '/http-bind';
