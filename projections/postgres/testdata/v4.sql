-- The views of version 4 as its binaries created them, unversioned in the
-- schema public (projections/postgres/postgres.go before versions moved to
-- schemas of their own), with a checkpoint a test can recognize.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE IF NOT EXISTS pins (
	request_id  uuid PRIMARY KEY,
	tenant      text COLLATE "C" NOT NULL,
	seq         bigint NOT NULL,
	created     bigint NOT NULL,
	cid         text COLLATE "C" NOT NULL,
	cid_key     text COLLATE "C" NOT NULL,
	name        text COLLATE "C" NOT NULL,
	name_fold   text COLLATE "C" NOT NULL,
	list_status text COLLATE "C",
	hidden      boolean NOT NULL,
	phase       text COLLATE "C" NOT NULL,
	due_at      bigint,
	lease_until bigint,
	failed_at   bigint,
	car_bytes   bigint NOT NULL,
	state       bytea NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS pins_seq ON pins (tenant, seq);
CREATE INDEX IF NOT EXISTS pins_created ON pins (tenant, created, seq);
CREATE INDEX IF NOT EXISTS pins_status ON pins (tenant, list_status, seq) WHERE list_status IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_cid ON pins (tenant, cid_key, seq);
CREATE INDEX IF NOT EXISTS pins_name_fold ON pins (tenant, name_fold, seq);
CREATE INDEX IF NOT EXISTS pins_name_trigrams ON pins USING gin (name_fold gin_trgm_ops);
CREATE INDEX IF NOT EXISTS pins_due ON pins (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_root_due ON pins (cid_key, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_root_claimed ON pins (cid_key) WHERE lease_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_lease ON pins (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_failed ON pins (failed_at) WHERE failed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_car ON pins (cid_key) WHERE list_status = 'pinned';

CREATE TABLE IF NOT EXISTS pin_meta (
	tenant text COLLATE "C" NOT NULL,
	key    text COLLATE "C" NOT NULL,
	value  text COLLATE "C" NOT NULL,
	seq    bigint NOT NULL,
	PRIMARY KEY (tenant, key, value, seq)
);

CREATE TABLE IF NOT EXISTS tenants (
	tenant       text COLLATE "C" PRIMARY KEY,
	last_seq     bigint NOT NULL,
	last_created bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS tenant_blocks (
	tenant text COLLATE "C" NOT NULL,
	status text COLLATE "C" NOT NULL,
	block  bigint NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (tenant, status, block)
);

CREATE TABLE IF NOT EXISTS meta_blocks (
	tenant text COLLATE "C" NOT NULL,
	key    text COLLATE "C" NOT NULL,
	value  text COLLATE "C" NOT NULL,
	status text COLLATE "C" NOT NULL,
	block  bigint NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (tenant, key, value, status, block)
);

CREATE TABLE IF NOT EXISTS totals (
	name text COLLATE "C" PRIMARY KEY,
	n    bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS tokens (
	token_id uuid PRIMARY KEY,
	tenant   text COLLATE "C" NOT NULL,
	hash     bytea NOT NULL,
	label    text COLLATE "C" NOT NULL,
	created  bigint NOT NULL,
	revoked  boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_hash ON tokens (hash);
CREATE INDEX IF NOT EXISTS tokens_tenant ON tokens (tenant, created);

CREATE TABLE IF NOT EXISTS checkpoint (
	id       int PRIMARY KEY CHECK (id = 1),
	position bigint NOT NULL
);
INSERT INTO checkpoint (id, position) VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS views_schema (version int NOT NULL);
INSERT INTO views_schema (version) VALUES (4);
UPDATE checkpoint SET position = 42 WHERE id = 1;
