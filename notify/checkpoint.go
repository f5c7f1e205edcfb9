package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// CheckpointStream holds the notifiers' checkpoints; TypeCheckpoint is
// their event type.
const (
	CheckpointStream = "notify-checkpoint"
	TypeCheckpoint   = "NotifyCheckpoint"
)

// Checkpoint says where a notifier starting afresh may follow the log
// from: every cause at or before Position has its deliveries in the log,
// and every delivery created at or before it is over.
type Checkpoint struct {
	Position eventlog.Position `json:"position"`
}

type savedCheckpoint struct {
	position eventlog.Position
	revision uint64
	exists   bool
}

func readCheckpoint(ctx context.Context, log eventLog) (savedCheckpoint, error) {
	evs, err := log.ReadStream(ctx, CheckpointStream, eventlog.StreamEnd, eventlog.Backwards, 1)
	if err != nil {
		return savedCheckpoint{}, fmt.Errorf("read %s: %w", CheckpointStream, err)
	}
	if len(evs) == 0 {
		return savedCheckpoint{}, nil
	}
	var c Checkpoint
	if err := json.Unmarshal(evs[0].Data, &c); err != nil {
		return savedCheckpoint{}, fmt.Errorf("decode %s/%d: %w", CheckpointStream, evs[0].Revision, err)
	}
	return savedCheckpoint{position: c.Position, revision: evs[0].Revision, exists: true}, nil
}

// mark is how far a restart may skip: the last event processed, or just
// before the oldest delivery still pending, whichever comes first.
func (n *Notifier) mark() eventlog.Position {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.processed
	for _, p := range n.pending {
		m = min(m, p.created-1)
	}
	return m
}

// checkpoints saves the mark every CheckpointEvery until ctx ends.
func (n *Notifier) checkpoints(ctx context.Context) {
	t := time.NewTicker(n.cfg.CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := n.SaveCheckpoint(ctx); err != nil && ctx.Err() == nil {
			n.logger.Warn("saving the checkpoint failed", "err", err)
		}
	}
}

// SaveCheckpoint appends the notifier's mark to the checkpoint stream if
// it is past the last checkpoint there. Checkpoints only move forwards:
// several notifiers append at the stream's revision, and one that finds a
// later checkpoint leaves it.
func (n *Notifier) SaveCheckpoint(ctx context.Context) error {
	m := n.mark()
	for range 5 {
		n.mu.Lock()
		saved := n.saved
		n.mu.Unlock()
		if saved.exists && m <= saved.position {
			return nil
		}
		data, err := json.Marshal(Checkpoint{Position: m})
		if err != nil {
			return err
		}
		ev := eventlog.Proposed{ID: uuid.New(), Type: TypeCheckpoint, Version: SchemaVersion, Data: data,
			Meta: eventlog.Metadata{Time: n.cfg.Now(), Actor: n.cfg.Actor}}
		res, err := n.deps.Log.Append(ctx, CheckpointStream, eventlog.ExpectedAfter(saved.revision, saved.exists), ev)
		if err == nil {
			n.mu.Lock()
			n.saved = savedCheckpoint{position: m, revision: res.Revision, exists: true}
			n.mu.Unlock()
			return nil
		}
		if !eventlog.IsWrongRevision(err) {
			return fmt.Errorf("append to %s: %w", CheckpointStream, err)
		}
		latest, err := readCheckpoint(ctx, n.deps.Log)
		if err != nil {
			return err
		}
		n.mu.Lock()
		n.saved = latest
		n.mu.Unlock()
	}
	return fmt.Errorf("append to %s: other notifiers kept moving it", CheckpointStream)
}
