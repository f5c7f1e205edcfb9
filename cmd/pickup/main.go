// Command pickup pins IPFS content into S3: one binary for every role
// (gateway, fetcher, projector, or all of them at once) and for the tools
// operators and auditors use on the event log.
//
// All wiring happens here: configuration, logger, metrics, stores and
// workers. Every long-running part is an actor in an oklog/run group.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// command is one of pickup's subcommands.
type command struct {
	name    string
	summary string
	// run runs the command with the arguments after its name.
	run func(ctx context.Context, env *env, args []string) error
}

// commands lists pickup's subcommands; `pickup help` prints them in this
// order.
func commands() []command {
	return []command{
		{"run", "run every role in one process on embedded defaults, state in ./data (what `make run` starts)", runAll},
		{"gateway", "serve the HTTP APIs (on AWS Lambda when AWS_LAMBDA_RUNTIME_API is set)", runGateway},
		{"fetcher", "fetch pinned DAGs into verified CARs in S3 or a directory", runFetcher},
		{"serve", "serve what is pinned, verified, from the carpark: a trustless gateway (GET/HEAD /ipfs/{cid}: raw blocks, CARs; UnixFS with --serve-deserialized), bitswap and delegated routing (/routing/v1/)", runServe},
		{"serve-key", "print a new libp2p private key for the serving role (the value of PICKUP_SERVE_LIBP2P_KEY; its peer ID on stderr)", runServeKey},
		{"projector", "keep the views, decide retries and dead letters, watch leases, publish the backlog", runProjector},
		{"health", "exit 0 when the process whose admin server is at ADDR is ready: health [ADDR]", runHealth},
		{"events", "print events of the log as JSON lines: events cat STREAM | events tail [--from POSITION] [--follow]; copy a history: events copy --from LOG --to LOG", runEvents},
		{"tokens", "issue, revoke and list tenants' bearer tokens: tokens create --tenant NAME | tokens revoke ID | tokens ls", runTokens},
		{"pin", "pin, list, watch and remove pins through the Pinning Service API: pin add CID [--wait] | pin ls | pin status ID | pin rm ID", runPin},
		{"webhooks", "register, list and remove tenants' webhooks: webhooks add --tenant NAME --url URL | webhooks ls | webhooks rm ID", runWebhooks},
		{"audit", "print a pin's timeline with the reason for each decision: audit REQUEST_ID [--json]", runAudit},
		{"views", "PostgreSQL views: views setup (admin, once per version: schema and app role) | views ls | views drop --version N", runViews},
		{"replay", "rebuild every view from the log, or compare the live views with a rebuild: replay [--verify]", runReplay},
		{"reindex", "build the block index and root mapping of every CAR in the carpark that lacks them (resumable, idempotent)", runReindex},
	}
}

// env is what a command gets from the process: its streams and environment.
// Tests run commands with their own.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// wrapLog, if set, wraps the event log a long-running role opens: tests
	// inject faults through it.
	wrapLog func(eventlog.Store) eventlog.Store
}

// errUsage marks a command line that cannot be run; main prints usage and
// exits 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(ctx, e, os.Args[1:]))
}

// run runs the command line and returns the exit code.
func run(ctx context.Context, e *env, args []string) int {
	// On AWS Lambda the binary is the function's bootstrap, started with no
	// arguments: it is the gateway.
	if len(args) == 0 && e.getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		args = []string{"gateway"}
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stdout, args)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(e.stderr, "pickup %s: %v\n", c.name, err)
			return 2
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return 0
		default:
			fmt.Fprintf(e.stderr, "pickup %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "pickup: unknown command %q; `pickup help` lists them\n", args[0])
	return 2
}

func usage(w io.Writer, args []string) {
	cmds := commands()
	if len(args) > 1 {
		for _, c := range cmds {
			if c.name == args[1] {
				fmt.Fprintf(w, "pickup %s: %s\n\n", c.name, c.summary)
				c.run(context.Background(), &env{stdout: w, stderr: w, getenv: func(string) string { return "" }}, []string{"-h"})
				return
			}
		}
	}
	fmt.Fprintln(w, "pickup pins IPFS content into S3.\n\nUsage: pickup COMMAND [flags]\n\nCommands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n`pickup help COMMAND` documents a command's flags; every flag also reads\nthe PICKUP_* environment variable named beside it.")
}
