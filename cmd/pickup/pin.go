package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// `pickup pin` is a client of the Pinning Service API: what a user runs to
// pin, list, watch and remove pins, against any pickup gateway (or any
// other pinning service).

// pinCommands are pin's subcommands, in the order usage lists them.
func pinCommands() []command {
	return []command{
		{"add", "pin a CID: add CID [--name N] [--origin MA ...] [--meta k=v ...] [--wait]", pinAdd},
		{"ls", "list pins, newest first: ls [--status S,...] [--cid C ...] [--name N] [--limit N]", pinList},
		{"status", "show a pin: status REQUEST_ID [--wait]", pinStatusCmd},
		{"rm", "remove a pin: rm REQUEST_ID", pinRemove},
	}
}

// runPin runs `pickup pin SUBCOMMAND`.
func runPin(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := e.stdout
		if len(args) == 0 {
			w = e.stderr
		}
		fmt.Fprintln(w, "pickup pin SUBCOMMAND [flags]: a client of the Pinning Service API\n\nSubcommands:")
		for _, c := range pinCommands() {
			fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
		}
		fmt.Fprintln(w, "\nFlags of every subcommand:")
		f := newFlags(&env{stdout: w, stderr: w, getenv: e.getenv}, "pin")
		addClientFlags(f)
		f.SetOutput(w)
		f.PrintDefaults()
		if len(args) == 0 {
			return fmt.Errorf("%w: pin needs a subcommand: add, ls, status or rm", errUsage)
		}
		return nil
	}
	for _, c := range pinCommands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	return fmt.Errorf("%w: unknown pin subcommand %q: want add, ls, status or rm", errUsage, args[0])
}

// clientFlags say where the API is and who the user is.
type clientFlags struct {
	api, token, tokenFile *string
}

func addClientFlags(f *flags) *clientFlags {
	return &clientFlags{
		api:       f.string("api", "http://127.0.0.1:3000", "base URL of the Pinning Service API", "PICKUP_API"),
		token:     f.string("token", "", "bearer token (default: the one in --token-file)", "PICKUP_TOKEN"),
		tokenFile: f.string("token-file", "data/token", "file holding the token, read when no token is given (pickup run keeps its tenant's token there)", "PICKUP_TOKEN_FILE"),
	}
}

// client returns the API client the flags describe.
func (c *clientFlags) client() (*psaClient, error) {
	base, err := url.Parse(strings.TrimRight(*c.api, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%w: --api %q: want an http:// or https:// URL", errUsage, *c.api)
	}
	token := strings.TrimSpace(*c.token)
	if token == "" {
		b, err := os.ReadFile(*c.tokenFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("%w: no token: give --token or PICKUP_TOKEN (`pickup tokens create` issues one), or run `pickup run`, which keeps one in %s", errUsage, *c.tokenFile)
		case err != nil:
			return nil, fmt.Errorf("read token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	return &psaClient{base: base.String(), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// parsePinFlags parses a subcommand's flags, which may come before or
// after its arguments, and returns the arguments.
func parsePinFlags(f *flags, args []string) ([]string, error) {
	var positional []string
	for {
		if err := f.parse(args); err != nil {
			return nil, err
		}
		if f.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, f.Arg(0))
		args = f.Args()[1:]
	}
}

// multi is a flag that may be given many times, each value kept.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func pinAdd(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "pin add")
	cf := addClientFlags(f)
	name := f.String("name", "", "the pin's name")
	var origins, meta multi
	f.Var(&origins, "origin", "a `multiaddr` of a peer that has the DAG (repeat for more)")
	f.Var(&meta, "meta", "`key=value` metadata (repeat for more)")
	wait := f.Bool("wait", false, "show the fetch's progress until the pin is pinned (exit 0) or failed (exit 1)")
	asJSON := f.Bool("json", false, "print the API's PinStatus JSON")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup pin add CID [flags]: pin a CID")
		f.PrintDefaults()
	}
	pos, err := parsePinFlags(f, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: pin add takes one CID", errUsage)
	}
	body := pinObject{CID: pos[0], Name: *name, Origins: origins}
	if len(meta) > 0 {
		body.Meta = map[string]string{}
		for _, kv := range meta {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("%w: --meta %q: want key=value", errUsage, kv)
			}
			body.Meta[k] = v
		}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var ps pinStatus
	raw, err := c.do(ctx, http.MethodPost, "/pins", body, &ps)
	if err != nil {
		return err
	}
	if !*wait {
		return printStatus(e.stdout, ps, raw, *asJSON)
	}
	fmt.Fprintf(e.stderr, "request %s: %s\n", ps.RequestID, ps.Status)
	return waitAndPrint(ctx, e, c, ps, raw, *asJSON)
}

func pinStatusCmd(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "pin status")
	cf := addClientFlags(f)
	wait := f.Bool("wait", false, "show the fetch's progress until the pin is pinned (exit 0) or failed (exit 1)")
	asJSON := f.Bool("json", false, "print the API's PinStatus JSON")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup pin status REQUEST_ID [flags]: show a pin")
		f.PrintDefaults()
	}
	pos, err := parsePinFlags(f, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: pin status takes one request id", errUsage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var ps pinStatus
	raw, err := c.do(ctx, http.MethodGet, "/pins/"+url.PathEscape(pos[0]), nil, &ps)
	if err != nil {
		return err
	}
	if !*wait {
		if err := printStatus(e.stdout, ps, raw, *asJSON); err != nil {
			return err
		}
		return failedError(ps)
	}
	return waitAndPrint(ctx, e, c, ps, raw, *asJSON)
}

func pinList(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "pin ls")
	cf := addClientFlags(f)
	status := f.String("status", "queued,pinning,pinned,failed", "statuses to list, comma separated")
	var cids multi
	f.Var(&cids, "cid", "list only pins of this `CID` (repeat, or comma separate, for up to 10)")
	name := f.String("name", "", "list only pins with this name")
	limit := f.Int("limit", 10, "most pins listed (1 to 1000)")
	asJSON := f.Bool("json", false, "print the API's PinResults JSON")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup pin ls [flags]: list pins, newest first")
		f.PrintDefaults()
	}
	pos, err := parsePinFlags(f, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: pin ls takes no arguments (filter with --cid, --name, --status)", errUsage)
	}
	q := url.Values{}
	q.Set("status", *status)
	q.Set("limit", strconv.Itoa(*limit))
	if len(cids) > 0 {
		q.Set("cid", strings.Join(cids, ","))
	}
	if *name != "" {
		q.Set("name", *name)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var res pinResults
	raw, err := c.do(ctx, http.MethodGet, "/pins?"+q.Encode(), nil, &res)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := e.stdout.Write(append(bytes.TrimSpace(raw), '\n'))
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST ID\tSTATUS\tCREATED\tCID\tNAME\tDETAILS")
	for _, ps := range res.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ps.RequestID, ps.Status, shortTime(ps.Created), ps.Pin.CID, ps.Pin.Name, ps.Info["status_details"])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.Count > len(res.Results) {
		fmt.Fprintf(e.stderr, "%d of %d pins shown; --limit shows more\n", len(res.Results), res.Count)
	}
	return nil
}

func pinRemove(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "pin rm")
	cf := addClientFlags(f)
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup pin rm REQUEST_ID [flags]: remove a pin")
		f.PrintDefaults()
	}
	pos, err := parsePinFlags(f, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: pin rm takes one request id", errUsage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if _, err := c.do(ctx, http.MethodDelete, "/pins/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed %s\n", pos[0])
	return nil
}

// ---- waiting ----

// waitPoll is how often --wait asks for the pin's status. The fetcher
// reports progress every third of its lease; polling faster only makes
// the bar's spinner turn.
const waitPoll = 500 * time.Millisecond

// waitRetryFor is how long --wait keeps trying through errors that may
// pass (the gateway restarting, a 5xx) before it gives up.
const waitRetryFor = 30 * time.Second

// waitAndPrint follows a pin until it is pinned or failed, then prints it;
// a failed pin is an error (exit 1).
func waitAndPrint(ctx context.Context, e *env, c *psaClient, ps pinStatus, raw []byte, asJSON bool) error {
	var show waitDisplay = &progressLines{w: e.stderr}
	if isTerminal(e.stderr) {
		show = newProgressBar(e.stderr)
	}
	ps, raw, err := follow(ctx, c, ps, raw, show)
	show.done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(e.stderr, "stopped waiting; the pin goes on: pickup pin status %s\n", ps.RequestID)
		}
		return err
	}
	if err := printStatus(e.stdout, ps, raw, asJSON); err != nil {
		return err
	}
	return failedError(ps)
}

// waitDisplay shows a pin's progress as --wait follows it.
type waitDisplay interface {
	show(ps pinStatus)
	done()
}

// follow polls the pin until it is pinned or failed, showing each status,
// and returns the last one with its JSON (raw is ps's).
func follow(ctx context.Context, c *psaClient, ps pinStatus, raw []byte, show waitDisplay) (pinStatus, []byte, error) {
	var failingSince time.Time
	for {
		show.show(ps)
		if ps.Status == "pinned" || ps.Status == "failed" {
			return ps, raw, nil
		}
		select {
		case <-ctx.Done():
			return ps, nil, ctx.Err()
		case <-time.After(waitPoll):
		}
		var next pinStatus
		got, err := c.do(ctx, http.MethodGet, "/pins/"+url.PathEscape(ps.RequestID), nil, &next)
		var api *apiError
		switch {
		case err == nil:
			failingSince = time.Time{}
		case ctx.Err() != nil:
			return ps, nil, ctx.Err()
		case errors.As(err, &api) && api.status < 500:
			return ps, nil, err
		case failingSince.IsZero():
			failingSince = time.Now()
			continue
		case time.Since(failingSince) > waitRetryFor:
			return ps, nil, err
		default:
			continue
		}
		ps, raw = next, got
	}
}

// progressLines writes a line each time the pin's status details change:
// what --wait shows when its output is not a terminal.
type progressLines struct {
	w    io.Writer
	last string
}

func (p *progressLines) show(ps pinStatus) {
	line := ps.Status
	if d := ps.Info["status_details"]; d != "" {
		line = d
	}
	if line != p.last {
		fmt.Fprintln(p.w, line)
		p.last = line
	}
}

func (p *progressLines) done() {}

// progressBar is a spinner with the bytes fetched, their rate, and the
// blocks: the DAG's size is unknown until it is all fetched.
type progressBar struct {
	w       io.Writer
	bar     *progressbar.ProgressBar
	attempt string
}

func newProgressBar(w io.Writer) *progressBar {
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("queued"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSpinnerType(14),
		// No spinner of its own: the bar's goroutine would go on drawing
		// after Exit (it stops only when a bar of known length fills up).
		// The spinner turns at each poll instead.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionSetWidth(10),
		// It draws when shown a status, every poll: no throttle, which
		// would drop the last frame of a poll.
		progressbar.OptionThrottle(0),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetRenderBlankState(true),
	)
	return &progressBar{w: w, bar: bar}
}

func (p *progressBar) show(ps pinStatus) {
	var b int64
	desc := ps.Status
	switch ps.Status {
	case "pinning":
		b, _ = strconv.ParseInt(ps.Info["bytes"], 10, 64)
		desc = fmt.Sprintf("pinning, attempt %s: %s blocks", orDefault(ps.Info["attempt"], "1"), orDefault(ps.Info["blocks"], "0"))
		// A new attempt starts again from nothing.
		if a := ps.Info["attempt"]; a != p.attempt {
			p.attempt = a
			p.bar.Reset()
		}
	case "pinned":
		b, _ = strconv.ParseInt(ps.Info["car_bytes"], 10, 64)
	case "queued":
		if ps.Info["failure_reason"] != "" {
			desc = "queued for a retry after " + ps.Info["failure_reason"]
		}
	}
	p.bar.Set64(b)
	p.bar.Describe(desc)
}

func (p *progressBar) done() {
	p.bar.Exit()
	fmt.Fprintln(p.w)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// isTerminal reports whether w is a terminal, where a bar can redraw
// itself; anywhere else (a file, a pipe, CI's log) gets plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// failedError is the error of a failed pin: why it failed.
func failedError(ps pinStatus) error {
	if ps.Status != "failed" {
		return nil
	}
	why := orDefault(ps.Info["failure_reason"], "failed")
	if m := ps.Info["failure_message"]; m != "" {
		why += ": " + m
	}
	return fmt.Errorf("pin %s failed: %s", ps.RequestID, why)
}

// ---- output ----

// printStatus prints a PinStatus for people, or its JSON as the API sent it.
func printStatus(w io.Writer, ps pinStatus, raw []byte, asJSON bool) error {
	if asJSON {
		_, err := w.Write(append(bytes.TrimSpace(raw), '\n'))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "request\t%s\n", ps.RequestID)
	fmt.Fprintf(tw, "status\t%s\n", ps.Status)
	fmt.Fprintf(tw, "cid\t%s\n", ps.Pin.CID)
	if ps.Pin.Name != "" {
		fmt.Fprintf(tw, "name\t%s\n", ps.Pin.Name)
	}
	fmt.Fprintf(tw, "created\t%s\n", ps.Created)
	for _, k := range slices.Sorted(maps.Keys(ps.Pin.Meta)) {
		fmt.Fprintf(tw, "meta.%s\t%s\n", k, ps.Pin.Meta[k])
	}
	if d := ps.Info["status_details"]; d != "" {
		fmt.Fprintf(tw, "details\t%s\n", d)
	}
	for _, k := range slices.Sorted(maps.Keys(ps.Info)) {
		if k != "status_details" {
			fmt.Fprintf(tw, "%s\t%s\n", k, ps.Info[k])
		}
	}
	return tw.Flush()
}

// shortTime writes an API timestamp to the second, for tables.
func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// ---- the API ----

// pinObject, pinStatus and pinResults are the Pinning Service API's Pin,
// PinStatus and PinResults.
type pinObject struct {
	CID     string            `json:"cid"`
	Name    string            `json:"name,omitempty"`
	Origins []string          `json:"origins,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
}

type pinStatus struct {
	RequestID string            `json:"requestid"`
	Status    string            `json:"status"`
	Created   string            `json:"created"`
	Pin       pinObject         `json:"pin"`
	Delegates []string          `json:"delegates"`
	Info      map[string]string `json:"info"`
}

type pinResults struct {
	Count   int         `json:"count"`
	Results []pinStatus `json:"results"`
}

// psaClient sends requests to a Pinning Service API as one user.
type psaClient struct {
	base  string
	token string
	http  *http.Client
}

// apiError is an answer other than a success, in the API's error shape
// when it has one.
type apiError struct {
	status          int
	reason, details string
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%d %s", e.status, e.reason)
	if e.details != "" {
		msg += ": " + e.details
	}
	if e.status == http.StatusUnauthorized {
		msg += " (the token was refused: check --token, PICKUP_TOKEN or --token-file)"
	}
	return msg
}

// maxAnswer bounds the answer read: a page of 1,000 pins is far less.
const maxAnswer = 64 << 20

// do sends a request with body as JSON (none when nil), decodes a success
// into out (when not nil), and returns the answer's bytes.
func (c *psaClient) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var f struct {
			Error struct{ Reason, Details string } `json:"error"`
		}
		api := &apiError{status: resp.StatusCode, reason: http.StatusText(resp.StatusCode)}
		if json.Unmarshal(raw, &f) == nil && f.Error.Reason != "" {
			api.reason, api.details = f.Error.Reason, f.Error.Details
		}
		return raw, fmt.Errorf("%s %s: %w", method, path, api)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("%s %s: the answer is not the API's JSON: %w", method, path, err)
		}
	}
	return raw, nil
}
