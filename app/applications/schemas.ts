/** Request and response shapes of /v1/applications; the same schemas validate and document. */
import { z } from 'zod';
import { mailbox } from '../email';
import { looksLikeUuid } from '../shared/ids';

/** Lower case, so `Billing` and `billing` cannot both exist; also what a metric label allows. */
export const applicationName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be 1 to 63 characters: a-z, 0-9, ".", "_", "-", starting with a letter or digit')
  .refine((v) => !looksLikeUuid(v), 'must not look like a UUID (names and ids share the X-Application header and the URL)')
  .meta({ example: 'billing' });

const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/** The largest quota a setting takes: beyond these a quota limits nothing a single installation could send. */
export const QUOTA_MAX = { minute: 1_000_000, day: 1_000_000_000 } as const;
const quota = (max: number) => z.number().int().min(1).max(max).nullable().optional();

/** Settings an application may override; null (or absent at creation) = the installation's value. */
const settings = {
  rateLimitPerSecond: z.number().int().min(1).max(100_000).nullable().optional().meta({ description: 'requests per second for the application, shared by all its API keys; null = RATE_LIMIT_PER_SECOND' }),
  rateLimitBurst: z.number().int().min(1).max(1_000_000).nullable().optional().meta({ description: 'burst for the application, shared by all its API keys; null = RATE_LIMIT_BURST' }),
  defaultFrom: mailbox.nullable().optional().meta({ description: 'sender when a request gives no `from`; null = MAIL_FROM' }),
  allowedSenderDomains: z
    .array(z.string().toLowerCase().regex(DOMAIN, 'must be a domain name such as example.com'))
    .max(50)
    .optional()
    .meta({ description: 'when not empty, `from` must be on one of these domains or a subdomain' }),
  retentionDays: z.number().int().min(1).max(3_650).nullable().optional().meta({ description: 'days finished emails and events are kept; null = the installation default' }),
  emailQuotaPerMinute: quota(QUOTA_MAX.minute).meta({ description: 'emails accepted per minute (a batch counts each email; an email to several recipients counts one); null = no quota' }),
  emailQuotaPerDay: quota(QUOTA_MAX.day).meta({ description: 'emails accepted per UTC day (SES calls it Max24HourSend); null = no quota' }),
  eventQuotaPerMinute: quota(QUOTA_MAX.minute).meta({ description: 'events published per minute (one per event, whatever its fan-out); null = no quota' }),
  eventQuotaPerDay: quota(QUOTA_MAX.day).meta({ description: 'events published per UTC day; null = no quota' }),
};
const description = z.string().max(1_000).nullable().optional();

export const createApplicationSchema = z.strictObject({ name: applicationName, description, ...settings }).meta({ id: 'CreateApplication' });
export type CreateApplicationInput = z.infer<typeof createApplicationSchema>;

export const updateApplicationSchema = z
  .strictObject({ name: applicationName.optional(), description, ...settings })
  .refine((v) => Object.keys(v).length > 0, 'give at least one field to change')
  .meta({ id: 'UpdateApplication' });
export type UpdateApplicationInput = z.infer<typeof updateApplicationSchema>;

export const applicationSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    description: z.string().nullable(),
    rateLimitPerSecond: z.number().int().nullable(),
    rateLimitBurst: z.number().int().nullable(),
    defaultFrom: z.string().nullable(),
    allowedSenderDomains: z.array(z.string()),
    retentionDays: z.number().int().nullable(),
    emailQuotaPerMinute: z.number().int().nullable(),
    emailQuotaPerDay: z.number().int().nullable(),
    eventQuotaPerMinute: z.number().int().nullable(),
    eventQuotaPerDay: z.number().int().nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    disabledAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'Application' });
export type ApplicationView = z.infer<typeof applicationSchema>;

export const applicationListSchema = z.object({ data: z.array(applicationSchema) }).meta({ id: 'ApplicationList' });

export const applicationUsageSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    quotas: z
      .array(
        z.object({
          setting: z.enum(['emailQuotaPerMinute', 'emailQuotaPerDay', 'eventQuotaPerMinute', 'eventQuotaPerDay']),
          counts: z.enum(['emails', 'events']),
          window: z.enum(['minute', 'day']).meta({ description: 'fixed windows: the clock minute, the UTC day' }),
          limit: z.number().int(),
          used: z.number().int().meta({ description: 'counted in the current window' }),
          remaining: z.number().int(),
          resetsAt: z.iso.datetime().meta({ description: 'when the current window ends and the count starts again at 0' }),
        }),
      )
      .meta({ description: 'the quotas the application has set (the others are not counted)' }),
  })
  .meta({ id: 'ApplicationUsage' });
export type ApplicationUsageView = z.infer<typeof applicationUsageSchema>;

export const applicationParams = z.object({ idOrName: z.string().meta({ description: 'the application id or its name' }) });
