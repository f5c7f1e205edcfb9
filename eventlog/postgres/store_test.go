package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/postgres"
	"github.com/pickup-ipfs/pickup/internal/postgrestest"
)

func openStore(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recorded is a history as another log would hand it over: streams
// interleaved, times to the nanosecond, ids of all kinds.
func recorded(n int) []eventlog.Event {
	var evs []eventlog.Event
	revs := map[string]uint64{}
	at := time.Date(2026, 12, 3, 12, 0, 0, 123456789, time.UTC)
	for i := range n {
		stream := fmt.Sprintf("pin-%d", i%7)
		if i%5 == 0 {
			stream = "pin-solo" // runs of one stream, written as one append
		}
		e := eventlog.Event{
			ID: uuid.New(), Stream: stream, Revision: revs[stream], Position: eventlog.Position(1000 + 3*i),
			Type: "Imported", Version: 1 + i%2, Data: json.RawMessage(fmt.Sprintf(`{"n": %d,  "spaces kept":true}`, i)),
			Meta: eventlog.Metadata{Time: at.Add(time.Duration(i) * time.Nanosecond), Actor: "elsewhere"},
		}
		if i%3 == 0 {
			e.Meta.CorrelationID, e.Meta.CausationID = uuid.New(), uuid.New()
		}
		revs[stream]++
		evs = append(evs, e)
	}
	return evs
}

func readAll(t *testing.T, s eventlog.Store) []eventlog.Event {
	t.Helper()
	var out []eventlog.Event
	for after := eventlog.Position(0); ; {
		evs, err := s.ReadAll(context.Background(), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].Position
	}
}

// TestImportKeepsEveryField: an imported history reads back in its order
// with every field but the position as it was, to the byte and the
// nanosecond; importing it again writes nothing.
func TestImportKeepsEveryField(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pg.NewDatabase(t))
	in := recorded(250)
	for _, page := range [][]eventlog.Event{in[:100], in[100:], in[:100]} {
		if err := s.Import(ctx, page); err != nil {
			t.Fatalf("import: %v", err)
		}
	}
	got := readAll(t, s)
	if len(got) != len(in) {
		t.Fatalf("log holds %d events after importing %d (one page twice)", len(got), len(in))
	}
	for i, g := range got {
		w := in[i]
		if g.ID != w.ID || g.Stream != w.Stream || g.Revision != w.Revision || g.Type != w.Type || g.Version != w.Version ||
			!bytes.Equal(g.Data, w.Data) || !g.Meta.Time.Equal(w.Meta.Time) || g.Meta != w.Meta {
			t.Fatalf("event %d read back as %+v, imported %+v", i, g, w)
		}
	}
}

// TestImportIsAllOrNothing: a page that does not continue the log's
// streams is refused whole.
func TestImportIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pg.NewDatabase(t))
	in := recorded(40)
	if err := s.Import(ctx, in[:10]); err != nil {
		t.Fatal(err)
	}
	gap := append([]eventlog.Event(nil), in[10:20]...)
	gap = append(gap, in[25]) // skips the revisions of in[20:25]
	if err := s.Import(ctx, gap); !eventlog.IsWrongRevision(err) {
		t.Errorf("import of a page with a gap: %v, want a wrong revision", err)
	}
	reused := append([]eventlog.Event(nil), in[10:20]...)
	reused[5].ID = in[3].ID
	reused[5].Stream, reused[5].Revision = in[3].Stream, in[3].Revision+100
	if err := s.Import(ctx, reused); err == nil {
		t.Error("import reusing an id in its stream succeeded")
	}
	bad := append([]eventlog.Event(nil), in[10:20]...)
	bad[9].Data = json.RawMessage(`{"n":`)
	if err := s.Import(ctx, bad); !errors.Is(err, eventlog.ErrInvalid) {
		t.Errorf("import with bad JSON: %v, want ErrInvalid", err)
	}
	if got := readAll(t, s); len(got) != 10 {
		t.Errorf("refused imports wrote: the log holds %d events, want 10", len(got))
	}
}

// TestRefusesWhatTextCannotHold: names PostgreSQL's text cannot store are
// refused alone, as invalid input, and an append beside them lands.
func TestRefusesWhatTextCannotHold(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pg.NewDatabase(t))
	ok := eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: json.RawMessage(`{}`)}
	nul := ok
	nul.ID, nul.Type = uuid.New(), "Bad\x00Type"
	latin1 := ok
	latin1.ID, latin1.Meta.Actor = uuid.New(), "caf\xe9"
	for name, c := range map[string]struct {
		stream string
		e      eventlog.Proposed
	}{
		"stream not UTF-8": {"pin-\xff", ok},
		"NUL in a type":    {"pin-a", nul},
		"actor not UTF-8":  {"pin-a", latin1},
	} {
		if _, err := s.Append(ctx, c.stream, eventlog.Any, c.e); !errors.Is(err, eventlog.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.Append(ctx, "pin-a", eventlog.NoStream, ok); err != nil {
		t.Fatalf("a good append after refused ones: %v", err)
	}
	if got := readAll(t, s); len(got) != 1 {
		t.Errorf("log holds %d events, want the 1 good one", len(got))
	}
}

func TestOpenRefusesBadSettings(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		url  string
		opts postgres.Options
	}{
		{"not a url at all ://", postgres.Options{}},
		{"postgres://127.0.0.1:1/none?sslmode=disable&connect_timeout=2", postgres.Options{}},
		{pg.NewDatabase(t), postgres.Options{PollInterval: -time.Second}},
		{pg.NewDatabase(t), postgres.Options{MaxBatch: -1}},
		{pg.NewDatabase(t), postgres.Options{Readers: -1}},
	} {
		if s, err := postgres.Open(ctx, c.url, c.opts); err == nil {
			s.Close()
			t.Errorf("Open(%q, %+v) succeeded", c.url, c.opts)
		}
	}
}

// TestLeastPrivilegedRole: once the schema exists, a role with USAGE on it
// and SELECT, INSERT on the table (what the README asks for) appends,
// reads and follows; it needs no CREATE.
func TestLeastPrivilegedRole(t *testing.T) {
	ctx := context.Background()
	admin := pg.NewDatabase(t)
	openStore(t, admin).Close()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	role := "events_app_" + uuid.NewString()[:8]
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT USAGE ON SCHEMA pickup_events TO " + role,
		"GRANT SELECT, INSERT ON pickup_events.events TO " + role,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	app, err := postgrestest.WithUser(admin, role, "")
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, app)
	e := eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: json.RawMessage(`{}`)}
	if _, err := s.Append(ctx, "pin-app", eventlog.NoStream, e); err != nil {
		t.Fatalf("append as %s: %v", role, err)
	}
	if got := readAll(t, s); len(got) != 1 || got[0].ID != e.ID {
		t.Errorf("read as %s: %v", role, got)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM pickup_events.events"); err != nil {
		t.Fatal(err)
	}
	// Without the grants, the role is refused at once, with the reason.
	if _, err := conn.Exec(ctx, "REVOKE INSERT ON pickup_events.events FROM "+role); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "pin-app", eventlog.Any, eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: json.RawMessage(`{}`)}); err == nil {
		t.Error("append without INSERT succeeded")
	}
}

// TestReadAheadIsNeverStale: the page read ahead after a full page is
// handed out only if full; a short one is read again, so events appended
// after it was read are not missed.
func TestReadAheadIsNeverStale(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pg.NewDatabase(t))
	const limit = 10
	appendN := func(n int) {
		for range n {
			e := eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: json.RawMessage(`{}`)}
			if _, err := s.Append(ctx, "pin-ahead", eventlog.Any, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(limit + 2)
	first, err := s.ReadAll(ctx, 0, limit)
	if err != nil || len(first) != limit {
		t.Fatalf("first page: %d events, %v", len(first), err)
	}
	// The page after it is read ahead now, with 2 events; 5 more come.
	s.WaitReadAhead()
	appendN(5)
	second, err := s.ReadAll(ctx, first[limit-1].Position, limit)
	if err != nil || len(second) != 7 {
		t.Fatalf("the page after a full page holds %d events (%v), want the 7 appended after the first", len(second), err)
	}
	// Pages read ahead in full are the log's: a whole read matches.
	appendN(3 * limit)
	all := readAll(t, s)
	if len(all) != 4*limit+7 {
		t.Fatalf("read %d events page by page, want %d", len(all), 4*limit+7)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Revision != all[i-1].Revision+1 {
			t.Fatalf("page by page, revision %d follows %d", all[i].Revision, all[i-1].Revision)
		}
	}
}

// TestNotifiedAcrossStores: a subscriber that never polls (its poll
// interval is an hour) still hears at once of appends made through
// another Store, by LISTEN/NOTIFY.
func TestNotifiedAcrossStores(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	writer := openStore(t, url)
	reader, err := postgres.Open(ctx, url, postgres.Options{PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	got := make(chan eventlog.Event, 10)
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go reader.Subscribe(subCtx, 0, eventlog.Filter{Types: []string{"Told"}}, func(evs []eventlog.Event) error {
		for _, e := range evs {
			got <- e
		}
		return nil
	})
	for i := range 3 {
		// Let the subscriber catch up and wait, then append elsewhere.
		time.Sleep(100 * time.Millisecond)
		e := eventlog.Proposed{ID: uuid.New(), Type: "Told", Version: 1, Data: json.RawMessage(`{}`)}
		if _, err := writer.Append(ctx, "pin-told", eventlog.Any, e); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g.ID != e.ID {
				t.Fatalf("subscriber got %s, want %s", g.ID, e.ID)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("append %d through another Store not delivered in 20s: no notification", i)
		}
	}
}

// TestInterleavedReplays: readers replaying the log at once, page by page
// in turns (each with its page read ahead), each read it whole and in
// order.
func TestInterleavedReplays(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pg.NewDatabase(t))
	if err := s.Import(ctx, recorded(500)); err != nil {
		t.Fatal(err)
	}
	const readers, limit = 6, 7 // more readers than pages read ahead
	after := make([]eventlog.Position, readers)
	got := make([][]eventlog.Event, readers)
	for more := true; more; {
		more = false
		for r := range readers {
			evs, err := s.ReadAll(ctx, after[r], limit+r%2)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) > 0 {
				got[r] = append(got[r], evs...)
				after[r] = evs[len(evs)-1].Position
				more = true
			}
		}
	}
	want := readAll(t, s)
	for r := range readers {
		if len(got[r]) != len(want) {
			t.Fatalf("reader %d read %d events, the log holds %d", r, len(got[r]), len(want))
		}
		for i := range want {
			if got[r][i].ID != want[i].ID {
				t.Fatalf("reader %d: event %d is %s, want %s", r, i, got[r][i].ID, want[i].ID)
			}
		}
	}
}

// TestListensOnlyWhenSubscribed: a Store that appends and reads (a gateway
// on Lambda) holds no LISTEN connection; its first subscription opens one.
func TestListensOnlyWhenSubscribed(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	s := openStore(t, url)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	listeners := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN pickup_events'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	e := eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: json.RawMessage(`{}`)}
	if _, err := s.Append(ctx, "pin-quiet", eventlog.NoStream, e); err != nil {
		t.Fatal(err)
	}
	readAll(t, s)
	if n := listeners(); n != 0 {
		t.Errorf("%d LISTEN connections before any subscription, want 0", n)
	}
	subCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(subCtx, 0, eventlog.Filter{}, func([]eventlog.Event) error { return nil }) }()
	deadline := time.Now().Add(20 * time.Second)
	for listeners() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no LISTEN connection 20s after the first subscription")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("subscription ended with %v", err)
	}
}

// The server ends every connection of the store (as a failover, a restart
// or an administrator does): each fails only at its next use, and the
// store's next append, reads and head succeed on fresh connections, the
// append written once.
func TestServerEndedConnections(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	s := openStore(t, url)
	ev := func() eventlog.Proposed {
		return eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: json.RawMessage(`{}`)}
	}
	if _, err := s.Append(ctx, "pin-a", eventlog.NoStream, ev()); err != nil {
		t.Fatal(err)
	}
	// Warm several pooled connections, so that more than one is dead.
	for range 4 {
		if _, err := s.ReadStream(ctx, "pin-a", 0, eventlog.Forwards, 10); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var ended int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t`).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	if ended == 0 {
		t.Fatal("the store held no connection to end")
	}
	second := ev()
	res, err := s.Append(ctx, "pin-a", eventlog.At(0), second)
	if err != nil {
		t.Fatalf("append after the server ended %d connections: %v", ended, err)
	}
	if res.Revision != 1 {
		t.Fatalf("append landed at revision %d, want 1", res.Revision)
	}
	evs, err := s.ReadStream(ctx, "pin-a", 0, eventlog.Forwards, 10)
	if err != nil {
		t.Fatalf("read after the connections ended: %v", err)
	}
	if len(evs) != 2 || evs[1].ID != second.ID {
		t.Fatalf("read %d events, want the two appended once each", len(evs))
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if head, err := s.Head(ctx); err != nil || head != res.Position {
		t.Fatalf("head after the connections ended: %d, %v; want %d", head, err, res.Position)
	}
}

// TestCommitsProbeIndexesOnly: what a commit reads to decide its batch (the
// head, each stream's last revision, where each event id already is) is
// found through the indexes, never by reading the table, so appends do not
// slow down as the log grows. The planner chose a hash join over the whole
// table for the ids once the table's statistics were known (12,800 events:
// 2.3 ms a commit), which this would catch.
func TestCommitsProbeIndexesOnly(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	s := openStore(t, url)
	const streams, perStream = 64, 200
	var wg sync.WaitGroup
	for g := range streams {
		wg.Go(func() {
			for n := range perStream {
				e := eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: json.RawMessage(`{}`)}
				if _, err := s.Append(ctx, fmt.Sprintf("pin-%d-%d", g, n), eventlog.NoStream, e); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ANALYZE pickup_events.events"); err != nil {
		t.Fatal(err)
	}
	// A batch as 64 appenders make it: new streams, and new ids.
	var names []string
	var ids []pgtype.UUID
	for i := range 64 {
		names = append(names, fmt.Sprintf("pin-new-%d", i))
		ids = append(ids, pgtype.UUID{Bytes: uuid.New(), Valid: true})
	}
	rows, err := conn.Query(ctx, "EXPLAIN "+postgres.LookUpSQL, names, names, ids)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(plan, "\n"); strings.Contains(text, "Seq Scan on events") {
		t.Errorf("a commit's look-up reads the whole table of %d events:\n%s", streams*perStream, text)
	}
}
