package serve

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/serve/locate"
)

// Damage is a stored block found not to match its CID.
type Damage struct {
	Location locate.Location
	Block    cid.Cid
	Err      error
}

// Reporter is told of damaged blocks. Damaged must not block for long: it
// is called on the request's path. It is safe for concurrent use.
type Reporter interface {
	Damaged(ctx context.Context, d Damage)
}

// reporters tells each of its reporters.
type reporters []Reporter

func (rs reporters) Damaged(ctx context.Context, d Damage) {
	for _, r := range rs {
		if r != nil {
			r.Damaged(ctx, d)
		}
	}
}

// logReporter logs and counts damage: what every serving role does.
type logReporter struct {
	log     *slog.Logger
	damaged prometheus.Counter
}

func (r logReporter) Damaged(ctx context.Context, d Damage) {
	r.damaged.Inc()
	r.log.ErrorContext(ctx, "damaged block in the carpark: not served",
		"block", d.Block, "car", d.Location.CarCID, "key", d.Location.Key,
		"offset", d.Location.Offset, "length", d.Location.Length, "err", d.Err)
}

// The damage reports' stream and event.
const (
	// DamageStreamPrefix starts the stream of a CAR's damage reports:
	// damage-<carCid>.
	DamageStreamPrefix = "damage-"
	// TypeBlockDamaged names a damage report.
	TypeBlockDamaged = "BlockDamaged"
	// DamageSchemaVersion is the version of BlockDamaged's body.
	DamageSchemaVersion = 1
)

// BlockDamaged: a block of a stored CAR did not match its CID when the
// serving role read it, and was not served. The CAR is to be repaired (a
// new fetch of its root) by an operator or a later repair actor.
type BlockDamaged struct {
	CarCID string `json:"car_cid"`
	Key    string `json:"key"`
	Block  string `json:"block"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Detail string `json:"detail"`
}

// EventType implements eventlog.Payload.
func (BlockDamaged) EventType() string { return TypeBlockDamaged }

var damageCodec = eventlog.NewCodec[BlockDamaged](DamageSchemaVersion, BlockDamaged{})

// DecodeDamage returns the body of a damage report.
func DecodeDamage(e eventlog.Event) (BlockDamaged, error) { return damageCodec.Decode(e) }

// Appender is the part of the event log a LogReporter writes to.
type Appender interface {
	Append(ctx context.Context, stream string, expected eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error)
}

// LogReporter reports damage as BlockDamaged events of the CAR's stream.
// One damaged section is reported once however often it is read: the
// event's id is made of the CAR, the offset and the block, and the log
// writes an id once.
type LogReporter struct {
	Log    Appender
	Actor  string
	Logger *slog.Logger
}

// Damaged implements Reporter. A report that cannot be appended is
// logged; the request has failed already.
func (r LogReporter) Damaged(ctx context.Context, d Damage) {
	car := d.Location.CarCID.String()
	body := BlockDamaged{CarCID: car, Key: d.Location.Key, Block: d.Block.String(), Offset: d.Location.Offset, Length: d.Location.Length}
	if d.Err != nil {
		body.Detail = d.Err.Error()
	}
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("pickup damage "+car+" "+strconv.FormatInt(d.Location.Offset, 10)+" "+body.Block))
	ev, err := damageCodec.Propose(body, id, eventlog.Metadata{Actor: r.Actor})
	if err == nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, err = r.Log.Append(actx, DamageStreamPrefix+car, eventlog.Any, ev)
		cancel()
	}
	if err != nil && r.Logger != nil {
		r.Logger.ErrorContext(ctx, "report damaged block", "component", "serve", "car", car, "offset", d.Location.Offset, "err", err)
	}
}
