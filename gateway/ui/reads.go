package ui

import (
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/audit"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// Timeline is a pin's story as the page shows it: GET
// /pins/{requestid}/timeline.
type Timeline struct {
	RequestID string `json:"requestid"`
	// Status is the pin's status after its last event.
	Status  pin.Status `json:"status"`
	Entries []Entry    `json:"entries"`
}

// Entry is one event of a timeline: projections/audit's entry without what
// only the operator needs (log positions, event ids), which would tell a
// tenant how busy the log is.
type Entry struct {
	Time    string     `json:"time"`
	Type    string     `json:"type"`
	Actor   string     `json:"actor"`
	Attempt int        `json:"attempt"`
	Status  pin.Status `json:"status"`
	// What happened, and Why, for failures and the decisions nobody asked
	// for (retries, dead letters, the watchdog's failures).
	What string `json:"what"`
	Why  string `json:"why,omitempty"`
}

// TimelineOf tells a pin's story from its events, in order, with
// projections/audit's words.
func TimelineOf(requestID uuid.UUID, events []eventlog.Event) Timeline {
	entries := audit.Timeline(events)
	t := Timeline{RequestID: requestID.String(), Status: pin.StatusQueued, Entries: make([]Entry, len(entries))}
	for i, e := range entries {
		t.Entries[i] = Entry{Time: api.FormatTime(e.Time), Type: e.Type, Actor: e.Actor, Attempt: e.Attempt,
			Status: e.Status, What: e.What, Why: e.Reason}
		t.Status = e.Status
	}
	return t
}

// ThroughputWindow is how far back the throughput chart looks, in
// ThroughputMinutes buckets of a minute.
const (
	ThroughputWindow  = time.Hour
	ThroughputMinutes = 60
)

// ThroughputLimit is the most pins the chart is computed from: one page of
// the listing, the most the views give at once.
const ThroughputLimit = views.MaxListLimit

// ThroughputQuery is the listing the chart is computed from: the tenant's
// pinned pins requested within the window before now, newest first. It
// needs no query of its own from the view stores.
func ThroughputQuery(tenant string, now time.Time) views.ListQuery {
	return views.ListQuery{Tenant: tenant, Statuses: []pin.Status{pin.StatusPinned},
		After: now.Add(-ThroughputWindow), Limit: ThroughputLimit}
}

// Throughput is what the page's chart draws: GET /ui/throughput.
//
// It approximates the bytes stored per minute over the last hour from the
// views, without a query of its own: each pinned pin's CAR size counts in
// the minute of its last update (its validation, for a pin still pinned).
// It counts only pins requested within the hour (a pin requested earlier
// and pinned within it is missed), at most ThroughputLimit of them (the
// newest; Partial says when more matched), and CARs reused from the
// carpark count although nothing was fetched.
type Throughput struct {
	// From is the start of the first minute; the last minute is the
	// current one.
	From    string   `json:"from"`
	Minutes []Minute `json:"minutes"`
	// Pins and Bytes add up the minutes.
	Pins  int   `json:"pins"`
	Bytes int64 `json:"bytes"`
	// Partial is true when more pins matched than the chart read.
	Partial bool `json:"partial"`
}

// Minute is one bar of the chart.
type Minute struct {
	Start string `json:"start"`
	Pins  int    `json:"pins"`
	Bytes int64  `json:"bytes"`
}

// ThroughputOf buckets the pins ThroughputQuery listed (res) by the minute
// of their last update, over the ThroughputMinutes minutes up to now's.
func ThroughputOf(res views.ListResult, now time.Time) Throughput {
	end := now.UTC().Truncate(time.Minute).Add(time.Minute)
	from := end.Add(-ThroughputMinutes * time.Minute)
	t := Throughput{From: api.FormatTime(from), Minutes: make([]Minute, ThroughputMinutes), Partial: res.Count > len(res.Pins)}
	for i := range t.Minutes {
		t.Minutes[i].Start = api.FormatTime(from.Add(time.Duration(i) * time.Minute))
	}
	for _, p := range res.Pins {
		if p.Status != pin.StatusPinned || p.UpdatedAt.Before(from) || !p.UpdatedAt.Before(end) {
			continue
		}
		m := &t.Minutes[int(p.UpdatedAt.Sub(from)/time.Minute)]
		m.Pins++
		m.Bytes += p.CarBytes
		t.Pins++
		t.Bytes += p.CarBytes
	}
	return t
}
