/**
 * The deployment model, in four parts: `types.ts` (vocabulary and shapes), `easeemail.ts` (the
 * EaseEmail model itself), `derive.ts` (values that follow from it: env, heap caps, Redis flags,
 * names) and `validate.ts` (its invariants). Renderers and tests import from here.
 */
export * from './types';
export * from './easeemail';
export * from './derive';
export * from './validate';
