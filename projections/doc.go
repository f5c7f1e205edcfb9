// Package projections turns the event log into what users see: the views of
// pins (status, listings, the newest request per CID, tokens, the work
// queues), kept by the Runner, and the figures the deployment scales on
// (Metrics). It never appends to the log and never decides: every view can
// be dropped and rebuilt by replaying the log, and comes back identical.
// The read model the API uses is package projections/views; the retry
// decider and the lease watchdog, which read the work views but append, are
// in pin/deciders.
//
// # Views
//
// A view store (package embedded: one SQLite file; package postgres:
// PostgreSQL) keeps one row per pin request, with the pin's folded state
// (pin.State), and the rows that index and count them. What each row holds
// is computed by one pure function, Batch.Project, from the rows a batch of
// events touches; the stores only load those rows and save what changed, in
// one transaction with the checkpoint. So both stores hold the same rows
// (their dumps compare equal), a crash never applies an event twice or
// skips one, and a rebuild from position zero gives exactly the views that
// live processing produced, whatever the batch boundaries.
//
// Created, which clients page by, is unique and strictly increasing per
// tenant: the view takes max(the request's Created, the tenant's last
// created + 1µs), in log order, in whole microseconds (PostgreSQL's
// precision). Replaying the log gives the same values.
//
// A request that replaces another (POST /pins/{requestid}: PinRequested with
// Replaces) hides the replaced pin of the same tenant at once, before its
// PinRemoved lands: from Pin, List and the fetchers' work view.
//
// Events the views cannot take in (a pin's events before its request, a
// second request in a stream, unknown types or schema versions) are left
// out, the same way on every replay, and logged by the runner.
//
// # What a listing costs
//
// Every filter of GET /pins is backed by an index. A listing walks the index
// of its most selective filter (CIDs, then an exact or case-insensitive
// name, then the first meta key, else the statuses) newest first and stops
// at the page; the count comes from counters when it can:
//
//	filters                         page                      count
//	status, before, after           about the page            block counters: pins/1024 + 1024 rows
//	one meta key (+ those)          about the page            meta block counters, the same
//	cid, name (exact, iexact)       the matches               the matches
//	several meta keys               the first key's matches   the first key's matches
//	name partial, ipartial (3+)     the trigram index's hits  every match
//	name partial, ipartial (1-2)    until a page of matches   every pin of the tenant
//
// Substrings of three characters or more go through a trigram index of
// folded names (SQLite's FTS5, PostgreSQL's pg_trgm); shorter ones scan the
// tenant's names.
//
// # Work views
//
// The stores answer the fetchers and the deciders in request ids:
// DueForClaim and Claimable (one due request per root, none of a root being
// fetched, so that a root is fetched once however many ask for it),
// Overdue (leases run out, queue timeouts passed), AwaitingDecision (failed
// attempts), and CarForRoot (the CAR CID of a pinned root). The views lag
// the log by the runner's batch; the fetchers wait for the checkpoint to
// reach the event they act on (see package fetcher), the deciders re-read
// the pin's stream before deciding (see pin/pinlog).
package projections
