/**
 * The deliverability domain's public face: the worker's outgoing step (suppressions left out,
 * VERP return path, DKIM signature) and the return paths the inbound role verifies.
 */
export { createOutgoingMail } from './outgoing';
export { verpFromConfig, type Verp } from './verp';
