-- Optional ed25519 signatures per webhook endpoint (issue 13). Expand only: metadata changes, so
-- the exclusive lock on webhook_endpoints is held for milliseconds, and the previous release
-- keeps working beside this one (it never reads these columns; rows it writes get the default).
-- - "signatureScheme" NOT NULL with a constant default: PostgreSQL 11+ stores the default in the
--   catalog instead of rewriting the table; every existing endpoint is an HMAC one.
-- - "publicKey" (whpk_..., public, so not encrypted): nullable, set for ed25519 endpoints only.
-- - The CHECK is added NOT VALID: enforced for every insert and update from now on, without a
--   scan under the lock; the next migration validates it without blocking writes.
-- The private key (whsk_...) goes where HMAC secrets go: "secretEncrypted", AES-256-GCM.
ALTER TABLE "webhook_endpoints" ADD COLUMN "signatureScheme" TEXT NOT NULL DEFAULT 'hmac-sha256';
ALTER TABLE "webhook_endpoints" ADD COLUMN "publicKey" TEXT;
ALTER TABLE "webhook_endpoints" ADD CONSTRAINT "webhook_endpoints_signatureScheme_check"
  CHECK (("signatureScheme" = 'hmac-sha256' AND "publicKey" IS NULL) OR ("signatureScheme" = 'ed25519' AND "publicKey" IS NOT NULL)) NOT VALID;
