/**
 * The email domain's public face: what other domains may use (an application's default sender
 * is validated as the `from` of an email is). The api and worker roots wire the rest directly.
 */
export { mailbox } from './fields';
