-- Cheaper commits (issue 6): what PostgreSQL does per archived event.

-- The archive payload as text, not jsonb. PostgreSQL parsed every payload into jsonb on the
-- way in (~5 us of ~35 per event in a batch commit) and printed it back as text for every
-- reader: they all read ``payload::text`` and decode it with the project's codec, which
-- wrote it (``events.codec.to_json``: compact, sorted keys). Stored as text, that JSON comes
-- back byte for byte; a query that needs a field casts (``payload::jsonb -> 'data'``).
-- Rows archived before this migration keep jsonb's rendering of the same value.
ALTER TABLE event_archive ALTER COLUMN payload TYPE text USING payload::text;
ALTER TYPE event_archive_row ALTER ATTRIBUTE payload TYPE text;

-- No query looks email-key holders up by lead (the closed loop reads them by key, through
-- the primary key); the index only cost an insert per new lead.
DROP INDEX lead_identity_lead;
