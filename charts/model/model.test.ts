import { createModel, DEFAULT_IMAGE, devSecretValues, migrationJobName, parseImage, resolveConfig, resolveEnv, validateModel } from '.';

describe('parseImage', () => {
  it('takes the tag as the release version', () => {
    expect(parseImage('easeemail:0.1.0')).toEqual({ ref: 'easeemail:0.1.0', version: '0.1.0' });
    expect(parseImage('registry.example:5000/team/easeemail:1.2.3-rc.1')).toEqual({ ref: 'registry.example:5000/team/easeemail:1.2.3-rc.1', version: '1.2.3-rc.1' });
  });

  it('names a digest-pinned image after the digest', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    expect(parseImage(`easeemail@${digest}`).version).toBe('sha256-abababababab');
  });

  it('refuses latest, a missing tag and a malformed digest, naming the field', () => {
    expect(() => parseImage('easeemail:latest')).toThrow('image ("easeemail:latest") must not use the "latest" tag');
    expect(() => parseImage('easeemail', 'EASEEMAIL_IMAGE')).toThrow('EASEEMAIL_IMAGE ("easeemail") needs an explicit tag');
    expect(() => parseImage('easeemail@sha256:123')).toThrow('malformed digest');
  });
});

describe('the model', () => {
  it('is valid and uses the package name and version for the image', () => {
    const model = createModel();
    expect(() => validateModel(model)).not.toThrow();
    expect(model.image.ref).toBe(DEFAULT_IMAGE);
    expect(DEFAULT_IMAGE).toBe('easeemail:0.1.0');
  });

  it('names the migration Job per release, as a DNS label', () => {
    expect(migrationJobName(createModel())).toBe('easeemail-migrate-0-1-0');
    expect(migrationJobName(createModel({ image: 'r.example/easeemail:2.0.0_Beta' }))).toBe('easeemail-migrate-2-0-0-beta');
    const long = migrationJobName(createModel({ image: `easeemail:${'1'.repeat(100)}` }));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it('overlays profile settings on the shared ones', () => {
    const model = createModel();
    expect(resolveConfig(model, 'prod').WEBHOOK_ALLOW_PRIVATE_NETWORKS).toBe('false');
    expect(resolveConfig(model, 'dev').WEBHOOK_ALLOW_PRIVATE_NETWORKS).toBe('true');
    expect(resolveConfig(model, 'dev').RUN_MIGRATIONS).toBe('false');
  });

  it('gives the bootstrap key to the dev api only', () => {
    const model = createModel();
    expect(resolveEnv(model, 'dev', 'api').secrets).toContain('BOOTSTRAP_API_KEY');
    expect(resolveEnv(model, 'prod', 'api').secrets).not.toContain('BOOTSTRAP_API_KEY');
    expect(resolveEnv(model, 'dev', 'worker').secrets).not.toContain('BOOTSTRAP_API_KEY');
    expect(resolveEnv(model, 'dev', 'migrate')).toEqual({ secrets: ['DATABASE_URL'], config: ['LOG_LEVEL'], runtime: { NODE_OPTIONS: '--max-old-space-size=168 --max-semi-space-size=8', MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' } });
  });

  it('derives dev secrets from the dev dependencies, in a form the app accepts', () => {
    const values = devSecretValues(createModel(), (dep) => `h-${dep}`);
    expect(values.DATABASE_URL).toBe('postgresql://easeemail:easeemail@h-db:5432/easeemail');
    expect(values.REDIS_URL).toBe('redis://h-redis:6379');
    expect(values.SMTP_URL).toBe('smtp://h-mailpit:1025');
    expect(Buffer.from(values.ENCRYPTION_KEY!, 'base64')).toHaveLength(32);
    expect(values.BOOTSTRAP_API_KEY).toMatch(/^ee_[A-Za-z0-9_-]{16,}$/);
  });
});
