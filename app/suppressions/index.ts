/** The suppressions domain's public face: what other domains (inbound, deliverability) and the roots use. */
export { MAX_ADDRESS_LENGTH, normaliseAddress, normaliseAll } from './address';
export { createSuppressionCheck, type SuppressionCheck } from './check';
export { suppressionRoutes } from './routes';
export { createSuppressionService, type SuppressionService } from './service';
