package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// flags is a command's flag set whose defaults come from the environment:
// each flag names its variables, and the first one set replaces the
// built-in default. A flag given on the command line wins over both. A
// variable that does not parse is reported by parse, naming the variable.
type flags struct {
	*flag.FlagSet
	getenv func(string) string
	envErr []error
	// allowPrivate is the one --allow-private-origins of a flag set that
	// both the gateway and the fetcher read (pickup run has both).
	allowPrivate *bool
	// carpark is the one set of carpark flags of a flag set that both the
	// fetcher and the serving role read.
	carpark *carparkFlags
	// maxCAR is the one --max-car-bytes of a flag set that both the
	// fetcher and the gateway (CAR uploads) read.
	maxCAR *int64
	// uploads is the one --uploads-dir of a flag set that both the gateway
	// and the fetcher read; uploadsBucket its --uploads-bucket and
	// --uploads-prefix.
	uploads       *string
	uploadsBucket *uploadsBucketFlags
	// s3 is the one --s3-endpoint and --s3-region of a flag set, for the
	// carpark and the uploads bucket.
	s3 *s3Flags
}

// allowPrivateOrigins defines --allow-private-origins once per flag set:
// the gateway keeps private, loopback and link-local origins, and the
// fetcher dials them. Off by default, so that a request cannot make pickup
// reach into its own network.
func (f *flags) allowPrivateOrigins() *bool {
	if f.allowPrivate == nil {
		f.allowPrivate = f.boolean("allow-private-origins", false, "keep and dial origins on private, loopback and link-local addresses (tests and closed networks only)", "PICKUP_ALLOW_PRIVATE_ORIGINS")
	}
	return f.allowPrivate
}

func newFlags(e *env, name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return &flags{FlagSet: fs, getenv: e.getenv}
}

// lookup returns the first of the variables that is set.
func (f *flags) lookup(vars ...string) (string, string, bool) {
	for _, v := range vars {
		if val := f.getenv(v); val != "" {
			return v, val, true
		}
	}
	return "", "", false
}

func describe(usage string, vars []string) string {
	if len(vars) == 0 {
		return usage
	}
	return fmt.Sprintf("%s (env %s)", usage, strings.Join(vars, ", "))
}

// string defines a string flag read from the first set variable of vars.
func (f *flags) string(name, def, usage string, vars ...string) *string {
	if _, v, ok := f.lookup(vars...); ok {
		def = v
	}
	return f.String(name, def, describe(usage, vars))
}

// typed defines a flag of any type through parse, with its default taken
// from the first set variable of vars.
func typed[T any](f *flags, name string, def T, usage string, parse func(string) (T, error), show func(T) string, vars ...string) *T {
	v := &value[T]{val: def, parse: parse, show: show}
	if name, s, ok := f.lookup(vars...); ok {
		if err := v.Set(s); err != nil {
			f.envErr = append(f.envErr, fmt.Errorf("%s=%q: %v", name, s, err))
		}
	}
	f.Var(v, name, describe(usage, vars))
	return &v.val
}

type value[T any] struct {
	val   T
	parse func(string) (T, error)
	show  func(T) string
}

func (v *value[T]) String() string {
	if v == nil || v.show == nil {
		return ""
	}
	return v.show(v.val)
}

func (v *value[T]) Set(s string) error {
	x, err := v.parse(s)
	if err == nil {
		v.val = x
	}
	return err
}

// boolean defines a bool flag. The flag package's bool flags take no value,
// so --name alone sets it.
func (f *flags) boolean(name string, def bool, usage string, vars ...string) *bool {
	if vname, s, ok := f.lookup(vars...); ok {
		b, err := strconv.ParseBool(s)
		if err != nil {
			f.envErr = append(f.envErr, fmt.Errorf("%s=%q: want true or false", vname, s))
		} else {
			def = b
		}
	}
	return f.Bool(name, def, describe(usage, vars))
}

func (f *flags) integer(name string, def int, usage string, vars ...string) *int {
	return typed(f, name, def, usage, func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, errors.New("want a whole number")
		}
		return n, nil
	}, strconv.Itoa, vars...)
}

// duration defines a duration flag ("90s", "4h"). Variables in millis are
// read as milliseconds (web3-storage/pickup's *_MS names), the others as Go
// durations.
func (f *flags) duration(name string, def time.Duration, usage string, vars []string, millis ...string) *time.Duration {
	d := typed(f, name, def, usage, time.ParseDuration, time.Duration.String, vars...)
	if _, set, _ := f.lookup(vars...); set == "" {
		if vname, s, ok := f.lookup(millis...); ok {
			ms, err := strconv.ParseInt(s, 10, 64)
			if err != nil || ms < 0 {
				f.envErr = append(f.envErr, fmt.Errorf("%s=%q: want milliseconds, a whole number", vname, s))
			} else {
				*d = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if len(millis) > 0 {
		fl := f.Lookup(name)
		fl.Usage = describe(usage, append(append([]string(nil), vars...), millis...))
	}
	return d
}

// bytesize defines a size flag: a number of bytes, or one with a unit
// (KiB, MiB, GiB, TiB, or KB, MB, GB, TB).
func (f *flags) bytesize(name string, def int64, usage string, vars ...string) *int64 {
	return typed(f, name, def, usage, parseBytes, func(n int64) string { return strconv.FormatInt(n, 10) }, vars...)
}

func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("want a size such as 33285996544, 16MiB or 31GiB")
	}
	return n * mult, nil
}

// list defines a comma-separated list flag.
func (f *flags) list(name string, def []string, usage string, vars ...string) *[]string {
	return typed(f, name, def, usage, func(s string) ([]string, error) {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	}, func(l []string) string { return strings.Join(l, ",") }, vars...)
}

// isSet reports whether the flag name was given, on the command line or by
// one of its variables vars, rather than left at its built-in default.
func (f *flags) isSet(name string, vars ...string) bool {
	_, _, set := f.lookup(vars...)
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// parse parses the arguments, turning flag errors, and variables that did
// not parse, into usage errors.
func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(f.envErr) > 0 {
		return fmt.Errorf("%w: %v", errUsage, errors.Join(f.envErr...))
	}
	return nil
}
