// What the offline module offers other modules and operators' tools (ModuleContext.use('offline')).

export interface OfflineApi {
  /** How many messages are stored for the account. */
  count(host: string, username: string): Promise<number>;
}
