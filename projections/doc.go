// Package projections turns the event log into what users see and into the
// decisions nobody asks for: the views of pins (status, listings, the newest
// request per CID, tokens), the retry and dead-letter decider, the lease
// watchdog, and the figures the deployment scales on. Every view can be
// dropped and rebuilt by replaying the log, and comes back identical.
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
//	name partial, ipartial          until a page of matches   every pin of the tenant
//
// Substring names are the one filter that scans the tenant's pins: the
// pure-Go SQLite has no trigram index.
//
// # Decisions, and the bound on how long a pin takes
//
// The Decider decides every failed attempt (retry with backoff and jitter,
// or dead letter), the Watchdog fails attempts whose lease ran out and due
// pins that no fetcher claimed within the queue timeout. Both read
// candidates from the views, then the pin's stream, decide with package
// pin, and append at the revision read with ids derived from the state
// decided on: replays and concurrent actors decide once.
//
// So no pin stays queued forever. With the watchdog and the decider running,
// a request reaches pinned or failed within
//
//	MaxAttempts × (QueueTimeout + FetchTimeout + Lease + 2 × WatchdogPeriod + DeciderPeriod) + RetryPolicy.MaxTotalDelay()
//
// (BoundConfig.Bound): in the worst attempt a fetcher claims the pin just
// before the watchdog's first pass after the queue timeout, renews its lease
// until its fetch timeout and vanishes; the next pass fails it and the
// decider decides. With the defaults (PICKUP_MAX_ATTEMPTS 5,
// PICKUP_RETRY_BASE_DELAY 30s, PICKUP_RETRY_MAX_DELAY 1h, jitter 20%,
// PICKUP_QUEUE_TIMEOUT 1h, PICKUP_FETCH_TIMEOUT 4h, PICKUP_LEASE 30s, a 5s
// watchdog and a 1s decider) that is 5 × 5h0m41s + 9m = 25h12m25s;
// TestNoPinQueuedForever drives a pin through that worst case on a clock the
// test holds, and it fails for good after 25h10m31s. The bound assumes
// fetchers stop at their fetch timeout; it does not count work handed back
// by stopping fetchers (which spends no attempt), a tenant's requeue of a
// failed pin, or the views' lag behind the log (milliseconds).
package projections
