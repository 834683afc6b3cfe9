/** The suppressions domain's public face: what other domains (inbound, deliverability) and the roots use. */
export { MAX_ADDRESS_LENGTH, normaliseAddress, normaliseAll } from './address';
export { createSuppressionCheck, SUPPRESSION_CHECK_POOL_SIZE, type SuppressionCheck } from './check';
export { suppressionRoutes } from './routes';
export { createSuppressionService, type SuppressionService } from './service';
