-- easeemail:no-transaction
-- Optional ed25519 signatures, step 2 of 2: validate the CHECK added NOT VALID by step 1. Outside
-- a transaction, so the scan runs under SHARE UPDATE EXCLUSIVE only (reads and writes go on), not
-- under step 1's exclusive lock. Validating a valid constraint does nothing, so it can run again.
ALTER TABLE "webhook_endpoints" VALIDATE CONSTRAINT "webhook_endpoints_signatureScheme_check";
