package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/api/client"
	"github.com/pickup-ipfs/pickup/internal/termsafe"
	"github.com/pickup-ipfs/pickup/projections/audit"
)

// `pickup pin` is a client of the Pinning Service API: what a user runs to
// pin, list, watch and remove pins, against any pickup gateway (or any
// other pinning service). The requests are package api/client's; this file
// is the command line: flags, and what is printed. Everything printed for
// people that came from the API (names, meta, CIDs, statuses, details,
// errors) goes through printable first: a name is the tenant's, and the
// service may be anyone's, so neither may reach the user's terminal with
// escape sequences or line breaks of its own.

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
func (c *clientFlags) client() (*client.Client, error) {
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
	cl, err := client.New(client.Config{BaseURL: *c.api, Token: token})
	if err != nil {
		return nil, fmt.Errorf("%w: %v (from --api and --token)", errUsage, err)
	}
	return cl, nil
}

// explain adds to an error of the API what the user can do about it.
func explain(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, client.ErrUnauthorized) {
		err = fmt.Errorf("%w (the token was refused: check --token, PICKUP_TOKEN or --token-file)", err)
	}
	// The error may quote the service's answer.
	return printableError{err}
}

// printableError is an error whose text is printed escaped (termsafe).
type printableError struct{ err error }

func (e printableError) Error() string { return termsafe.String(e.err.Error()) }
func (e printableError) Unwrap() error { return e.err }

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
	carFile := f.String("car", "", "send the DAG as this CARv1 `file` (- for stdin), e.g. from `ipfs dag export CID`, instead of having pickup fetch it")
	key := f.String("idempotency-key", "", "send this Idempotency-Key: the same key again is answered with the first request (and its CAR is not sent again)")
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
	body := api.Pin{CID: pos[0], Name: *name, Origins: origins}
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
	var ps api.PinStatus
	if *carFile != "" {
		ps, err = addCAR(ctx, c, body, *carFile, *key)
	} else {
		ps, err = c.Add(ctx, body, *key)
	}
	if err != nil {
		return explain(err)
	}
	if !*wait {
		return printStatus(e.stdout, ps, *asJSON)
	}
	fmt.Fprintf(e.stderr, "request %s: %s\n", termsafe.String(ps.RequestID), termsafe.String(string(ps.Status)))
	return waitAndPrint(ctx, e, c, ps, *asJSON)
}

// addCAR sends the CAR in file ("-": stdin) with the pin.
func addCAR(ctx context.Context, c *client.Client, p api.Pin, file, key string) (api.PinStatus, error) {
	var car io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return api.PinStatus{}, fmt.Errorf("%w: --car: %v", errUsage, err)
		}
		defer f.Close()
		car = f
	}
	return c.AddCAR(ctx, p, car, key)
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
	ps, err := c.Get(ctx, pos[0])
	if err != nil {
		return explain(err)
	}
	if !*wait {
		if err := printStatus(e.stdout, ps, *asJSON); err != nil {
			return err
		}
		return failedError(ps)
	}
	return waitAndPrint(ctx, e, c, ps, *asJSON)
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
	if *limit < 1 || *limit > 1000 {
		return fmt.Errorf("%w: --limit %d: want 1 to 1000", errUsage, *limit)
	}
	o := client.ListOptions{CIDs: cids, Name: *name, Limit: *limit}
	for _, st := range strings.Split(*status, ",") {
		if st = strings.TrimSpace(st); st != "" {
			o.Status = append(o.Status, api.Status(st))
		}
	}
	if len(o.Status) == 0 {
		return fmt.Errorf("%w: --status %q: want one or more of queued, pinning, pinned, failed", errUsage, *status)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	res, err := c.List(ctx, o)
	if err != nil {
		return explain(err)
	}
	if *asJSON {
		return printJSON(e.stdout, res)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST ID\tSTATUS\tCREATED\tCID\tNAME\tDETAILS")
	for _, ps := range res.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", termsafe.String(ps.RequestID), termsafe.String(string(ps.Status)), shortTime(ps.Created.Time),
			termsafe.String(ps.Pin.CID), termsafe.String(ps.Pin.Name), termsafe.String(ps.Info[api.InfoStatusDetails]))
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
	if err := c.Remove(ctx, pos[0]); err != nil {
		return explain(err)
	}
	fmt.Fprintf(e.stdout, "removed %s\n", pos[0])
	return nil
}

// ---- waiting ----

// waitAndPrint follows a pin until it is pinned or failed, then prints it;
// a failed pin is an error (exit 1).
func waitAndPrint(ctx context.Context, e *env, c *client.Client, ps api.PinStatus, asJSON bool) error {
	var show waitDisplay = &progressLines{w: e.stderr}
	if isTerminal(e.stderr) {
		show = newProgressBar(e.stderr)
	}
	ps, err := c.Wait(ctx, ps, show.show)
	show.done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(e.stderr, "stopped waiting; the pin goes on: pickup pin status %s\n", termsafe.String(ps.RequestID))
		}
		return explain(err)
	}
	if err := printStatus(e.stdout, ps, asJSON); err != nil {
		return err
	}
	return failedError(ps)
}

// waitDisplay shows a pin's progress as --wait follows it: show gets every
// status client.Wait reads.
type waitDisplay interface {
	show(ps api.PinStatus)
	done()
}

// progressLines writes a line each time the pin's status details change:
// what --wait shows when its output is not a terminal.
type progressLines struct {
	w    io.Writer
	last string
}

func (p *progressLines) show(ps api.PinStatus) {
	line := string(ps.Status)
	if d := ps.Info[api.InfoStatusDetails]; d != "" {
		line = d
	}
	if line != p.last {
		fmt.Fprintln(p.w, termsafe.String(line))
		p.last = line
	}
}

func (p *progressLines) done() {}

// progressBar is a spinner with the bytes fetched, their rate, and the
// blocks, and, when the DAG's root declares its size (info's percent and
// seconds_left), the percentage fetched and the time left at the rate so
// far: the spinner stays, since a DAG may turn out bigger than declared.
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

func (p *progressBar) show(ps api.PinStatus) {
	var b int64
	desc := string(ps.Status)
	switch ps.Status {
	case api.StatusPinning:
		b, _ = strconv.ParseInt(ps.Info[api.InfoBytes], 10, 64)
		desc = fmt.Sprintf("pinning, attempt %s: %s blocks", orDefault(ps.Info[api.InfoAttempt], "1"), orDefault(ps.Info[api.InfoBlocks], "0"))
		desc += completionText(ps.Info)
		// A new attempt starts again from nothing.
		if a := ps.Info[api.InfoAttempt]; a != p.attempt {
			p.attempt = a
			p.bar.Reset()
		}
	case api.StatusPinned:
		b, _ = strconv.ParseInt(ps.Info[api.InfoCarBytes], 10, 64)
	case api.StatusQueued:
		if ps.Info[api.InfoFailureReason] != "" {
			desc = "queued for a retry after " + ps.Info[api.InfoFailureReason]
		}
	}
	p.bar.Set64(b)
	p.bar.Describe(termsafe.String(desc))
}

func (p *progressBar) done() {
	p.bar.Exit()
	fmt.Fprintln(p.w)
}

// completionText is ", 42% of 3.0 MiB, 12s left" when info tells how far
// the fetch has come towards the size the DAG's root declares, and ""
// when the root declares none.
func completionText(info map[string]string) string {
	pct, expected := info[api.InfoPercent], info[api.InfoExpectedBytes]
	n, err := strconv.ParseInt(expected, 10, 64)
	if pct == "" || err != nil {
		return ""
	}
	out := fmt.Sprintf(", %s%% of %s", pct, audit.Bytes(n))
	if sec, err := strconv.ParseInt(info[api.InfoSecondsLeft], 10, 64); err == nil && sec > 0 {
		out += ", " + audit.Remaining(time.Duration(sec)*time.Second) + " left"
	}
	return out
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
func failedError(ps api.PinStatus) error {
	if ps.Status != api.StatusFailed {
		return nil
	}
	why := orDefault(ps.Info[api.InfoFailureReason], "failed")
	if m := ps.Info[api.InfoFailureMessage]; m != "" {
		why += ": " + m
	}
	return fmt.Errorf("pin %s failed: %s", termsafe.String(ps.RequestID), termsafe.String(why))
}

// ---- output ----

// printJSON prints v, a PinStatus or PinResults, as JSON on one line: for a
// pickup gateway, byte for byte what it sent; for another service, the
// spec's fields of what it sent. encoding/json escapes control characters
// below U+0020; the few a terminal may still act on (DEL, the C1 controls,
// format characters such as bidirectional overrides) are \u-escaped too:
// the same JSON value, never a raw escape on the terminal.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(escapeJSON(b), '\n'))
	return err
}

// escapeJSON \u-escapes, in encoding/json's output, the runes printable
// refuses that encoding/json leaves raw. Outside strings JSON is ASCII, so
// every such rune is inside a string, where an escape means the same.
func escapeJSON(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r >= 0x7f && !unicode.IsPrint(r) && r != utf8.RuneError }) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r >= 0x7f && !unicode.IsPrint(r) && r != utf8.RuneError {
			for _, u := range utf16.AppendRune(nil, r) {
				out = fmt.Appendf(out, `\u%04x`, u)
			}
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

// printStatus prints a PinStatus for people, or as JSON.
func printStatus(w io.Writer, ps api.PinStatus, asJSON bool) error {
	if asJSON {
		return printJSON(w, ps)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "request\t%s\n", termsafe.String(ps.RequestID))
	fmt.Fprintf(tw, "status\t%s\n", termsafe.String(string(ps.Status)))
	fmt.Fprintf(tw, "cid\t%s\n", termsafe.String(ps.Pin.CID))
	if ps.Pin.Name != "" {
		fmt.Fprintf(tw, "name\t%s\n", termsafe.String(ps.Pin.Name))
	}
	fmt.Fprintf(tw, "created\t%s\n", api.FormatTime(ps.Created.Time))
	for _, k := range slices.Sorted(maps.Keys(ps.Pin.Meta)) {
		fmt.Fprintf(tw, "meta.%s\t%s\n", termsafe.String(k), termsafe.String(ps.Pin.Meta[k]))
	}
	if d := ps.Info[api.InfoStatusDetails]; d != "" {
		fmt.Fprintf(tw, "details\t%s\n", termsafe.String(d))
	}
	for _, k := range slices.Sorted(maps.Keys(ps.Info)) {
		if k != api.InfoStatusDetails {
			fmt.Fprintf(tw, "%s\t%s\n", termsafe.String(k), termsafe.String(ps.Info[k]))
		}
	}
	return tw.Flush()
}

// shortTime writes an API timestamp to the second, for tables.
func shortTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }
