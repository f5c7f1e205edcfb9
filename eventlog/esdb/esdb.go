// Package esdb keeps pickup's event log in EventStoreDB (or KurrentDB, its
// new name), for deployments that outgrow one machine.
//
// It maps the eventlog concepts to the client's own:
//   - streams are EventStoreDB streams; expected states are its expected
//     revisions (Any, NoStream, an exact revision);
//   - event ids are EventStoreDB event ids, and an append is checked for
//     idempotency the way the embedded log checks it (eventlog.PriorAppend,
//     over the stream's events), on top of the server's own idempotency;
//   - an event's Position is its commit position in $all; reading and
//     subscribing after a position start at Position{Commit: p, Prepare: p}
//     and skip the event at p itself;
//   - schema version, time, actor, correlation and causation ids travel in
//     the event's JSON metadata;
//   - filtered subscriptions use server-side filters (a stream-prefix filter,
//     or an event-type regular expression), with the rest of the filter
//     applied as events arrive; system events ($-prefixed) never reach
//     pickup.
//
// The conformance suite runs against a server when PICKUP_ESDB_URL is set;
// no EventStoreDB server can be installed on the machines pickup is built
// on, so there it is skipped, saying so.
package esdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Store is an event log in EventStoreDB. It is safe for concurrent use.
type Store struct {
	client *esdb.Client
	closed atomic.Bool
}

var _ eventlog.Store = (*Store)(nil)

// Open connects to the server a connection string names: esdb://,
// esdb+discover://, or the same with kurrentdb.
func Open(ctx context.Context, connection string) (*Store, error) {
	connection = strings.Replace(connection, "kurrentdb", "esdb", 1)
	cfg, err := esdb.ParseConnectionString(connection)
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	return &Store{client: client}, nil
}

// Close closes the connection.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.client.Close()
}

func (s *Store) check() error {
	if s.closed.Load() {
		return eventlog.ErrClosed
	}
	return nil
}

// metadata is what travels in an event's metadata besides the server's own.
type metadata struct {
	Version     int        `json:"v"`
	Time        time.Time  `json:"time"`
	Actor       string     `json:"actor,omitempty"`
	Correlation *uuid.UUID `json:"correlation_id,omitempty"`
	Causation   *uuid.UUID `json:"causation_id,omitempty"`
}

func encodeMeta(e eventlog.Proposed, now time.Time) ([]byte, error) {
	m := metadata{Version: e.Version, Time: e.Meta.Time, Actor: e.Meta.Actor}
	if m.Time.IsZero() {
		m.Time = now
	}
	if e.Meta.CorrelationID != uuid.Nil {
		m.Correlation = &e.Meta.CorrelationID
	}
	if e.Meta.CausationID != uuid.Nil {
		m.Causation = &e.Meta.CausationID
	}
	return json.Marshal(m)
}

// event converts a recorded event, or returns false for events that are not
// pickup's (system events, or events without pickup's metadata).
func event(r *esdb.RecordedEvent) (eventlog.Event, bool) {
	if r == nil || strings.HasPrefix(r.StreamID, "$") || strings.HasPrefix(r.EventType, "$") {
		return eventlog.Event{}, false
	}
	var m metadata
	if err := json.Unmarshal(r.UserMetadata, &m); err != nil || m.Version < 1 {
		return eventlog.Event{}, false
	}
	e := eventlog.Event{
		ID: r.EventID, Stream: r.StreamID, Revision: r.EventNumber, Position: eventlog.Position(r.Position.Commit),
		Type: r.EventType, Version: m.Version, Data: r.Data,
		Meta: eventlog.Metadata{Time: m.Time.UTC(), Actor: m.Actor},
	}
	if m.Time.IsZero() {
		e.Meta.Time = r.CreatedDate.UTC()
	}
	if m.Correlation != nil {
		e.Meta.CorrelationID = *m.Correlation
	}
	if m.Causation != nil {
		e.Meta.CausationID = *m.Causation
	}
	return e, true
}

func expected(e eventlog.Expected) esdb.ExpectedRevision {
	if rev, ok := e.Revision(); ok {
		return esdb.Revision(rev)
	}
	if e.IsNoStream() {
		return esdb.NoStream{}
	}
	return esdb.Any{}
}

func isCode(err error, code esdb.ErrorCode) bool {
	var e *esdb.Error
	return errors.As(err, &e) && e.Code() == code
}

// Append implements eventlog.Store.
func (s *Store) Append(ctx context.Context, stream string, exp eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error) {
	if err := eventlog.CheckStream(stream); err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append: %w", err)
	}
	if err := eventlog.CheckProposed(events); err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	if err := s.check(); err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	// Decide idempotency as every backend does, over the stream as it is.
	existing, err := s.readStream(ctx, stream, 0, eventlog.Forwards, math.MaxUint64)
	if err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	byID := make(map[uuid.UUID]eventlog.Recorded, len(existing))
	for _, e := range existing {
		byID[e.ID] = eventlog.Recorded{Revision: e.Revision, Position: e.Position}
	}
	res, done, err := eventlog.PriorAppend(stream, events, func(id uuid.UUID) (eventlog.Recorded, bool, error) {
		at, ok := byID[id]
		return at, ok, nil
	})
	if err != nil || done {
		return res, err
	}
	now := time.Now()
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		meta, err := encodeMeta(e, now)
		if err != nil {
			return eventlog.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
		}
		data[i] = esdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: esdb.ContentTypeJson, Data: e.Data, Metadata: meta}
	}
	w, err := s.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expected(exp)}, data...)
	if isCode(err, esdb.ErrorCodeWrongExpectedVersion) {
		last, lerr := s.readStream(ctx, stream, eventlog.StreamEnd, eventlog.Backwards, 1)
		if lerr != nil {
			return eventlog.AppendResult{}, fmt.Errorf("append to %s: %w (and reading its revision: %v)", stream, err, lerr)
		}
		wrong := &eventlog.WrongRevisionError{Stream: stream, Expected: exp}
		if len(last) == 1 {
			wrong.Current, wrong.Exists = last[0].Revision, true
		}
		return eventlog.AppendResult{}, wrong
	}
	if err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	return eventlog.AppendResult{Revision: w.NextExpectedVersion, Position: eventlog.Position(w.CommitPosition)}, nil
}

// ReadStream implements eventlog.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error) {
	if err := eventlog.CheckStream(stream); err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	if limit < 1 {
		return nil, fmt.Errorf("read %s: %w: read limit %d, want at least 1", stream, eventlog.ErrInvalid, limit)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	evs, err := s.readStream(ctx, stream, from, dir, uint64(limit))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	return evs, nil
}

func (s *Store) readStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, count uint64) ([]eventlog.Event, error) {
	opts := esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(from)}
	if dir == eventlog.Backwards {
		opts.Direction = esdb.Backwards
		if from == eventlog.StreamEnd {
			opts.From = esdb.End{}
		}
	}
	r, err := s.client.ReadStream(ctx, stream, opts, count)
	if err != nil {
		if isCode(err, esdb.ErrorCodeResourceNotFound) {
			return nil, nil
		}
		return nil, err
	}
	defer r.Close()
	var out []eventlog.Event
	for {
		resolved, err := r.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return out, nil
		case isCode(err, esdb.ErrorCodeResourceNotFound):
			return nil, nil
		case err != nil:
			return nil, err
		}
		if e, ok := event(resolved.Event); ok {
			out = append(out, e)
		}
	}
}

// ReadAll implements eventlog.Store.
func (s *Store) ReadAll(ctx context.Context, after eventlog.Position, limit int) ([]eventlog.Event, error) {
	if limit < 1 {
		return nil, fmt.Errorf("read all: %w: read limit %d, want at least 1", eventlog.ErrInvalid, limit)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	var out []eventlog.Event
	from := esdb.AllPosition(esdb.Start{})
	if after > 0 {
		from = esdb.Position{Commit: uint64(after), Prepare: uint64(after)}
	}
	// System events are skipped, so read until the page is full or $all ends.
	for len(out) < limit {
		r, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: from}, uint64(limit-len(out))+1)
		if err != nil {
			return nil, fmt.Errorf("read all after %d: %w", after, err)
		}
		n, last := 0, from
		for {
			resolved, err := r.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("read all after %d: %w", after, err)
			}
			n++
			rec := resolved.Event
			last = rec.Position
			if e, ok := event(rec); ok && e.Position > after && len(out) < limit {
				out = append(out, e)
			}
		}
		r.Close()
		if n <= 1 {
			return out, nil
		}
		from = last
	}
	return out, nil
}

// Head implements eventlog.Store: the position of the last event that is
// pickup's, skipping the server's own events after it.
func (s *Store) Head(ctx context.Context) (eventlog.Position, error) {
	if err := s.check(); err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	r, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 4096)
	if err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	defer r.Close()
	for {
		resolved, err := r.Recv()
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read head: %w", err)
		}
		if e, ok := event(resolved.Event); ok {
			return e.Position, nil
		}
	}
}

// serverFilter is the part of a filter the server applies; the whole
// filter is applied again to what arrives.
func serverFilter(f eventlog.Filter) *esdb.SubscriptionFilter {
	switch {
	case len(f.StreamPrefixes) > 0:
		return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: f.StreamPrefixes}
	case len(f.Types) > 0:
		quoted := make([]string, len(f.Types))
		for i, t := range f.Types {
			quoted[i] = regexp.QuoteMeta(t)
		}
		return &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^(" + strings.Join(quoted, "|") + ")$"}
	}
	return esdb.ExcludeSystemEventsFilter()
}

// Subscribe implements eventlog.Store.
func (s *Store) Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error {
	if err := s.check(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	from := esdb.AllPosition(esdb.Start{})
	if after > 0 {
		from = esdb.Position{Commit: uint64(after), Prepare: uint64(after)}
	}
	sub, err := s.client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: from, Filter: serverFilter(filter)})
	if err != nil {
		return fmt.Errorf("subscribe after %d: %w", after, err)
	}
	defer sub.Close()

	// A reader goroutine feeds a channel, so that events already received
	// can be handed over in batches.
	type item struct {
		e   eventlog.Event
		err error
	}
	items := make(chan item, 1024)
	go func() {
		defer close(items)
		for {
			ev := sub.Recv()
			var it item
			switch {
			case ev.SubscriptionDropped != nil:
				it.err = ev.SubscriptionDropped.Error
			case ev.EventAppeared != nil:
				e, ok := event(ev.EventAppeared.Event)
				if !ok || e.Position <= after || !filter.Matches(e) {
					continue
				}
				it.e = e
			default:
				continue
			}
			select {
			case items <- it:
			case <-ctx.Done():
				return
			}
			if it.err != nil {
				return
			}
		}
	}()
	// next waits for the next item and says how the subscription ends, if
	// it does.
	next := func(it item, ok bool) error {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case s.closed.Load():
			return fmt.Errorf("subscribe: %w", eventlog.ErrClosed)
		case !ok:
			return fmt.Errorf("subscribe after %d: subscription ended", after)
		case it.err != nil:
			return fmt.Errorf("subscribe after %d: %w", after, it.err)
		}
		return nil
	}
	for {
		var batch []eventlog.Event
		var end error
		select {
		case it, ok := <-items:
			if err := next(it, ok); err != nil {
				return err
			}
			batch = append(batch, it.e)
		case <-ctx.Done():
			return ctx.Err()
		}
	more:
		for len(batch) < cap(items) {
			select {
			case it, ok := <-items:
				// Deliver what came before an end, then report it.
				if end = next(it, ok); end != nil {
					break more
				}
				batch = append(batch, it.e)
			default:
				break more
			}
		}
		if err := handle(batch); err != nil {
			return err
		}
		if end != nil {
			return end
		}
	}
}
