package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/pickup-ipfs/pickup/projections/postgres"
	locatepg "github.com/pickup-ipfs/pickup/serve/locate/postgres"
)

// runViews runs the operator's commands on PostgreSQL views: setup (once
// per version, with admin rights), ls and drop.
func runViews(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: views setup | views ls | views drop --version N", errUsage)
	}
	switch args[0] {
	case "setup":
		return viewsSetup(ctx, e, args[1:])
	case "ls":
		return viewsList(ctx, e, args[1:])
	case "drop":
		return viewsDrop(ctx, e, args[1:])
	case "-h", "--help", "help":
		for _, sub := range []func(context.Context, *env, []string) error{viewsSetup, viewsList, viewsDrop} {
			sub(ctx, e, []string{"-h"})
		}
		return flag.ErrHelp
	}
	return fmt.Errorf("%w: views %q: want setup, ls or drop", errUsage, args[0])
}

// adminFlags say where a PostgreSQL store (the views, the event log) is
// and who administers it: the same settings, under each store's names.
type adminFlags struct {
	// location is the store's URL; setting names it in errors.
	location, adminSecretARN, adminSecret *string
	setting                               string
	// appSecretARN and appSecret are the app role's, for setup.
	appSecretARN, appSecret *string
}

func addViewsAdminFlags(f *flags) *adminFlags {
	return &adminFlags{
		location:       f.string("views", "", "the views' database, a postgres:// URL (the cluster's writer, not a proxy); without a password when a secret gives it", "PICKUP_VIEWS"),
		setting:        "--views (PICKUP_VIEWS)",
		adminSecretARN: f.string("views-admin-secret-arn", "", "Secrets Manager secret of a role that may create schemas and roles (RDS's managed master secret, JSON username and password)", "PICKUP_VIEWS_ADMIN_SECRET_ARN"),
		adminSecret:    f.string("views-admin-secret", "", "that secret's value itself, as ECS task secrets inject it (wins over --views-admin-secret-arn)", "PICKUP_VIEWS_ADMIN_SECRET"),
	}
}

// addAppSecretFlags defines the app role's secret of a setup command, for
// the store whose flags are prefixed name (views, eventlog) and whose
// environment variables are prefixed env (PICKUP_VIEWS, PICKUP_EVENTLOG).
func (a *adminFlags) addAppSecretFlags(f *flags, name, env, reads string) {
	a.appSecretARN = f.string(name+"-app-secret-arn", "", "Secrets Manager secret of the app role to create or update (JSON username and password); the same secret the app reads through "+reads, env+"_APP_SECRET_ARN")
	a.appSecret = f.string(name+"-app-secret", "", "that secret's value itself, as ECS task secrets inject it (wins over --"+name+"-app-secret-arn)", env+"_APP_SECRET")
}

// secretValue is the value given, or else the one the secret arn holds,
// or "" when neither is set.
func secretValue(ctx context.Context, value, arn string) (string, error) {
	if value != "" || arn == "" {
		return value, nil
	}
	read, err := secretReader(ctx, arn)
	if err != nil {
		return "", err
	}
	return read(ctx)
}

// adminURL is the URL of the store's database with the admin's
// credentials.
func (a *adminFlags) adminURL(ctx context.Context) (string, error) {
	at := *a.location
	if !isPostgresURL(at) {
		return "", fmt.Errorf("%w: %s %q: want the postgres:// URL of the database", errUsage, a.setting, at)
	}
	secret, err := secretValue(ctx, *a.adminSecret, *a.adminSecretARN)
	if err != nil {
		return "", fmt.Errorf("admin secret: %w", err)
	}
	if secret == "" {
		return at, nil
	}
	u, err := postgresSecret(secret, at)
	if err != nil {
		return "", fmt.Errorf("%w: admin secret: %v", errUsage, err)
	}
	return u, nil
}

// appRole returns the app role's name and password from its secret, or
// "" for none given.
func (a *adminFlags) appRole(ctx context.Context) (role, password string, err error) {
	secret, err := secretValue(ctx, *a.appSecret, *a.appSecretARN)
	if err != nil {
		return "", "", fmt.Errorf("app secret: %w", err)
	}
	if secret == "" {
		return "", "", nil
	}
	if role, password, err = secretCredentials(secret); err != nil {
		return "", "", fmt.Errorf("%w: app secret: %v", errUsage, err)
	}
	return role, password, nil
}

func viewsSetup(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "views setup")
	admin := addViewsAdminFlags(f)
	admin.addAppSecretFlags(f, "views", "PICKUP_VIEWS", "PICKUP_VIEWS_SECRET_ARN")
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "pickup views setup: create this binary's views (version %d, schema %s) beside the other versions, and create or update the app role with the app secret's password, granted only what the app uses. Run with admin rights once per version; running it again changes nothing but the password.\n",
			postgres.SchemaVersion, postgres.SchemaName(postgres.SchemaVersion))
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return fmt.Errorf("%w: views setup takes no arguments", errUsage)
	}
	at, err := admin.adminURL(ctx)
	if err != nil {
		return err
	}
	var so postgres.SetupOptions
	if so.AppRole, so.AppPassword, err = admin.appRole(ctx); err != nil {
		return fmt.Errorf("views %w", err)
	}
	if err := postgres.Setup(ctx, at, so); err != nil {
		return err
	}
	// The block-location lookup lives beside the views, for the same app role.
	if err := locatepg.Setup(ctx, at, locatepg.SetupOptions{AppRole: so.AppRole, AppPassword: so.AppPassword}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "block lookup %s set up\n", locatepg.SchemaName)
	if so.AppRole == "" {
		fmt.Fprintf(e.stdout, "views %s set up; no app role (no app secret given)\n", postgres.SchemaName(postgres.SchemaVersion))
		return nil
	}
	fmt.Fprintf(e.stdout, "views %s set up for role %s\n", postgres.SchemaName(postgres.SchemaVersion), so.AppRole)
	return nil
}

func viewsList(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "views ls")
	admin := addViewsAdminFlags(f)
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup views ls: list the versions of the views in the database, with the log position each has reached")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return fmt.Errorf("%w: views ls takes no arguments", errUsage)
	}
	at, err := admin.adminURL(ctx)
	if err != nil {
		return err
	}
	versions, err := postgres.Versions(ctx, at)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSCHEMA\tCHECKPOINT\t")
	for _, v := range versions {
		this := ""
		if v.Version == postgres.SchemaVersion {
			this = "this binary's"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", v.Version, v.Schema, v.Checkpoint, this)
	}
	return tw.Flush()
}

func viewsDrop(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "views drop")
	admin := addViewsAdminFlags(f)
	version := f.Int("version", 0, "the version to drop (pickup views ls lists them); never this binary's own")
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "pickup views drop --version N: delete the views of version N, once no process of that version runs (this binary's own, %d, is refused)\n", postgres.SchemaVersion)
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 || *version == 0 {
		return fmt.Errorf("%w: views drop --version N", errUsage)
	}
	if *version == postgres.SchemaVersion {
		return fmt.Errorf("%w: version %d is this binary's own: drop it with a binary of another version, once no process of version %d runs", errUsage, *version, *version)
	}
	at, err := admin.adminURL(ctx)
	if err != nil {
		return err
	}
	if err := postgres.Drop(ctx, at, *version); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "views of version %d dropped\n", *version)
	return nil
}
