/** The suppressions domain's public face: what other domains (inbound) may use. */
export { MAX_ADDRESS_LENGTH, normaliseAddress, normaliseAll } from './address';
