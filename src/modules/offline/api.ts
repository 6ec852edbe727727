// What the offline module offers other modules and operators' tools (ModuleContext.use('offline')).

export interface OfflineApi {
  /** How many messages are stored for the account. */
  count(host: string, username: string): Promise<number>;
  /** Messages and bytes stored for all accounts together (the metrics' offline queue size). */
  totals(): Promise<{ messages: number; bytes: number }>;
}
