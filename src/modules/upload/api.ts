// What the upload module offers to tools and tests (XmppServer.module('upload')).
export interface UploadApi {
  /** Where the files are kept. */
  readonly dir: string;
  /** Runs the expiry job now (as its timer would): returns how many files and unused slots it deleted. */
  cleanup(): Promise<number>;
}
