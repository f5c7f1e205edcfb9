package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/carupload"
	"github.com/pickup-ipfs/pickup/pin"
)

// CAR uploads: POST /pins with Content-Type application/vnd.ipld.car, the
// CAR as the body and the Pin's fields in the query (cid, name, origins,
// meta), answered as any POST /pins. The route is POST /pins itself, not
// one of its own, so that a client of the Pinning Service API needs one
// more header and no other URL, and Idempotency-Key, the answer and every
// later read are the same. The Pin goes in the query because the body is
// the CAR, streamed, never held: a multipart body would put the Pin after
// or before megabytes the server must parse through.
//
// The body is received whole into the uploads area (Deps.Uploads) before
// the request is recorded, checked as it arrives (package carupload:
// framing, the header names cid, the limits; a body that breaks a rule is
// refused at once, without reading the rest), and PinRequested names the
// upload; the fetcher that claims the pin reads the DAG from it, checks
// every block as it checks any source's, writes the canonical CAR, and
// deletes the upload when the pin ends. A root already pinned (Deps.Pinned)
// is recorded without reading the body: the fetcher completes it from the
// carpark.

// Uploads is the uploads area; carupload.Dir is one. It is safe for
// concurrent use.
type Uploads interface {
	// Receive keeps body as the upload key, a CARv1 of root, or returns an
	// error wrapping carupload.ErrTooBig or carupload.ErrBadCAR for a body
	// that breaks a rule (read no further), or the body's own read error;
	// on any error nothing of it is kept.
	Receive(ctx context.Context, key string, root cid.Cid, body io.Reader) (carupload.Received, error)
	// Delete removes the upload key; one that is not there is no error.
	Delete(ctx context.Context, key string) error
	// Limits are the limits Receive applies.
	Limits() carupload.Limits
}

// Pinned tells whether a root is pinned for anyone; the views' stores are
// one.
type Pinned interface {
	CarForRoot(ctx context.Context, canonicalRoot string) (carCID string, ok bool, err error)
}

// lambdaBodyLimit is AWS Lambda's cap on a synchronous invocation's
// request, which its function URLs and API Gateway apply to bodies.
const lambdaBodyLimit = "6 MB"

// LambdaMaxCARBytes is the biggest CAR upload the gateway takes on AWS
// Lambda: a request is capped at 6 MB (6,291,456 bytes) there, and API
// Gateway hands a CAR's body to the function base64-encoded (4 bytes for
// every 3: 4,718,592 bytes of CAR at most, less the event's headers and
// request context, a few KiB); 4 MiB leaves 11 % for those.
const LambdaMaxCARBytes = 4 << 20

// errUploadsOff answers a CAR upload where no uploads area is wired.
var errUploadsOff = &apiError{status: http.StatusRequestEntityTooLarge, reason: api.ReasonTooLarge,
	details: "This API takes no CAR uploads: it has no uploads area shared with its fetchers (PICKUP_UPLOADS_BUCKET, or PICKUP_UPLOADS_DIR); " +
		"on AWS Lambda, whose requests are capped at " + lambdaBodyLimit + ", it takes them only into an uploads bucket. " +
		"Pin by CID (with origins that serve the DAG) instead, or send the CAR to a `pickup gateway` server that has one"}

// errLambdaTooBig answers a CAR upload over LambdaMaxCARBytes on Lambda.
func errLambdaTooBig(got string) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, reason: api.ReasonTooLarge,
		details: fmt.Sprintf("%s: this API runs on AWS Lambda, which caps a request at %s, so it takes CARs of up to %d bytes (4 MiB, its body base64-encoded). "+
			"Pin by CID (with origins that serve the DAG) instead, or send the CAR to a `pickup gateway` server sharing this deployment's uploads bucket", got, lambdaBodyLimit, LambdaMaxCARBytes)}
}

// OnLambda returns the uploads area as the gateway uses it on AWS Lambda:
// CARs over LambdaMaxCARBytes (or the area's own limit, if lower) are
// refused, 413, saying the cap and what to do instead; Lambda itself
// refuses a request over its cap before the gateway sees it, with a 413
// of its own.
func OnLambda(u Uploads) Uploads {
	return lambdaUploads{Uploads: u}
}

type lambdaUploads struct{ Uploads }

// Limits implements Uploads.
func (l lambdaUploads) Limits() carupload.Limits {
	lim := l.Uploads.Limits()
	lim.MaxCARBytes = min(lim.MaxCARBytes, LambdaMaxCARBytes)
	return lim
}

// Receive implements Uploads, reading no more than the cap.
func (l lambdaUploads) Receive(ctx context.Context, key string, root cid.Cid, body io.Reader) (carupload.Received, error) {
	capped := &capReader{r: body, left: l.Limits().MaxCARBytes}
	res, err := l.Uploads.Receive(ctx, key, root, capped)
	if capped.over {
		return carupload.Received{}, errLambdaTooBig("a body over the cap")
	}
	return res, err
}

// capReader reads at most left bytes of r, then fails.
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more says whether the body ends here.
		var one [1]byte
		if n, _ := io.ReadFull(c.r, one[:]); n > 0 {
			c.over = true
			return 0, carupload.ErrTooBig
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// errSlowSender: the upload's bytes stopped coming for UploadIdleTimeout.
type errSlowSender struct {
	idle time.Duration
	got  int64
}

func (e *errSlowSender) Error() string {
	return fmt.Sprintf("the CAR upload sent nothing for %s (after %d bytes): refused", e.idle, e.got)
}

// isCAR reports whether a POST /pins carries a CAR.
func isCAR(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == carupload.MediaType
}

// addCAR is POST /pins with a CAR body.
func (h *Handler) addCAR(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, func() (int, any, error) {
		ctx := r.Context()
		tenant, err := h.authenticate(r, schemeBearer)
		if err != nil {
			return 0, nil, err
		}
		key, _, err := parseIdempotencyKey(r.Header)
		if err != nil {
			return 0, nil, err
		}
		in, err := parseUploadQuery(r, h.cfg.AllowPrivateOrigins)
		if err != nil {
			return 0, nil, err
		}
		if h.uploads == nil {
			return 0, nil, errUploadsOff
		}
		if max := h.uploads.Limits().MaxCARBytes; r.ContentLength > max {
			if _, ok := h.uploads.(lambdaUploads); ok {
				return 0, nil, errLambdaTooBig(fmt.Sprintf("a body of %d bytes", r.ContentLength))
			}
			return 0, nil, fmt.Errorf("%w: a body of %d bytes, over the %d byte limit (MAX_CAR_BYTES)", carupload.ErrTooBig, r.ContentLength, max)
		}
		root, err := cid.Decode(in.CID.Text)
		if err != nil {
			return 0, nil, badRequest("cid %q does not parse", in.CID.Text)
		}
		delegates, err := h.delegates(ctx)
		if err != nil {
			return 0, nil, err
		}
		id := uuid.New()
		if key != "" {
			// A retry of a keyed upload that was recorded is answered from
			// the log, its body unread.
			id = KeyedRequestID(tenant, key)
			s, err := h.readPin(ctx, id)
			if err != nil {
				return 0, nil, err
			}
			if s.Exists {
				rec, err := replay(tenant, s, pin.Requested{CID: in.CID.Text, Name: in.Name, Origins: in.Origins, Meta: in.Meta})
				if err != nil {
					return 0, nil, err
				}
				return http.StatusAccepted, h.accepted(rec, delegates), nil
			}
		}
		upload := ""
		if !h.pinnedAlready(ctx, in.CID.Canonical) {
			// Its own key, not the request id alone: of keyed twins sent
			// at once, each keeps its own body, the one recorded first is
			// read, and the other is deleted.
			upload = carupload.NewKey(id)
			body := &idleBody{r: r.Body, rc: http.NewResponseController(w), idle: h.cfg.UploadIdleTimeout}
			_, err := h.uploads.Receive(ctx, upload, root, body)
			body.done()
			if err != nil {
				if body.timedOut {
					return 0, nil, &errSlowSender{idle: h.cfg.UploadIdleTimeout, got: body.n}
				}
				var ae *apiError
				if errors.As(err, &ae) {
					return 0, nil, ae
				}
				return 0, nil, fmt.Errorf("receive the CAR of %s: %w", in.CID.Text, err)
			}
		}
		rec, err := h.requestAs(ctx, tenant, in, id, key, uuid.Nil, upload)
		if err != nil || rec.Upload != upload {
			// Not recorded, or a keyed twin was recorded first with its
			// own upload: this one is no one's.
			if upload != "" && rec.Upload != upload {
				if derr := h.uploads.Delete(context.WithoutCancel(ctx), upload); derr != nil {
					h.log.WarnContext(ctx, "deleting an upload not recorded", "upload", upload, "err", derr)
				}
			}
		}
		if err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, h.accepted(rec, delegates), nil
	})
}

// pinnedAlready reports whether the views know a pinned request of the
// root; an error counts as no (the body is read, as it would be without
// the views).
func (h *Handler) pinnedAlready(ctx context.Context, canonicalRoot string) bool {
	if h.pinned == nil {
		return false
	}
	_, ok, err := h.pinned.CarForRoot(ctx, canonicalRoot)
	return err == nil && ok
}

// parseUploadQuery reads a CAR upload's Pin from its query: cid, name,
// origins (repeated, or comma separated), meta (a JSON object), checked as
// a Pin body is.
func parseUploadQuery(r *http.Request, allowPrivate bool) (pinInput, error) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "cid", "name", "origins", "meta":
			if k != "origins" && len(q[k]) > 1 {
				return pinInput{}, badRequest("query parameter %s is given %d times", k, len(q[k]))
			}
		default:
			return pinInput{}, badRequest("unknown query parameter %q: a CAR upload takes cid, name, origins and meta", k)
		}
	}
	if !q.Has("cid") {
		return pinInput{}, badRequest("a CAR upload names its root: POST /pins?cid=<root>")
	}
	body := map[string]any{"cid": q.Get("cid")}
	if q.Has("name") {
		body["name"] = q.Get("name")
	}
	var origins []string
	for _, o := range q["origins"] {
		for _, s := range strings.Split(o, ",") {
			if s = strings.TrimSpace(s); s != "" {
				origins = append(origins, s)
			}
		}
	}
	if origins != nil {
		body["origins"] = origins
	}
	if q.Has("meta") {
		var meta json.RawMessage
		if err := json.Unmarshal([]byte(q.Get("meta")), &meta); err != nil {
			return pinInput{}, badRequest("query parameter meta is not JSON: send a JSON object of strings")
		}
		body["meta"] = meta
	}
	b, err := json.Marshal(body)
	if err != nil {
		return pinInput{}, badRequest("the query does not make a Pin: %v", err)
	}
	return parsePin(b, allowPrivate)
}

// idleBody is a request body whose every read must bring bytes within
// idle: the connection's read deadline is moved on before each read (the
// server's own ReadTimeout, meant for small bodies, would cut a long
// upload short, and none would let a stalled one hold its connection).
type idleBody struct {
	r        io.Reader
	rc       *http.ResponseController
	idle     time.Duration
	n        int64
	timedOut bool
	// noDeadline: the connection takes no deadlines (a test's recorder,
	// Lambda).
	noDeadline bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if !b.noDeadline {
		if err := b.rc.SetReadDeadline(time.Now().Add(b.idle)); err != nil {
			b.noDeadline = true
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	var te interface{ Timeout() bool }
	if err != nil && errors.As(err, &te) && te.Timeout() {
		b.timedOut = true
	}
	return n, err
}

// done lifts the deadline, so that the connection's next request is not
// held to it.
func (b *idleBody) done() {
	if !b.noDeadline {
		b.rc.SetReadDeadline(time.Time{})
	}
}
