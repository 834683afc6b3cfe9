/**
 * The built-in event types: the ones the service publishes itself, with their payload schemas.
 * THE one list: GET /v1/event-types shows it, and a name here cannot be registered by an
 * application. A domain that publishes new types adds its catalog here.
 */
import { EMAIL_EVENT_CATALOG } from '../email';
import { OPERATIONAL_EVENT_CATALOG } from './operational-types';

export interface BuiltInEventType {
  name: string;
  description: string;
  schema: Record<string, unknown>;
}

export const BUILT_IN_EVENT_TYPES: readonly BuiltInEventType[] = [...EMAIL_EVENT_CATALOG, ...OPERATIONAL_EVENT_CATALOG];
