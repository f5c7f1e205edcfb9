package main

import (
	"flag"
	"fmt"
	"strings"
)

// flags is a command's flag set whose defaults come from the environment:
// each flag names its variable, and the variable, when set, replaces the
// built-in default. A flag given on the command line wins over both.
type flags struct {
	*flag.FlagSet
	getenv func(string) string
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

// parse parses the arguments, turning flag errors into usage errors.
func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}
