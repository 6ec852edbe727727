// What the mam module offers other modules and operators' tools (ModuleContext.use('mam')).

export interface MamApi {
  /** Runs one retention pass now (mam.max_age_days, mam.max_per_user); resolves with how many messages were deleted. */
  retention(): Promise<number>;
}
