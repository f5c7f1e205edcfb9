package terraform

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/api/client"
	"github.com/pickup-ipfs/pickup/internal/awsconfig"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/terraform/internal/awstest"
)

// TestDeployment runs what Terraform wires. From the applied plan of
// envs/dev and envs/prod (deploy_plan_test.go: the PostgreSQL event log,
// their default), of dev with EventStoreDB (eventlog=esdb), and of dev
// with private fetchers and static delegates, it starts every role as the plan
// configures it, on loopback, in the world deploy_world_test.go describes:
//
//   - each ECS service's task (the projector's first: ECS starts both
//     services at once, and a fetcher started before the views exist exits
//     and is started again; here the order saves that restart), its
//     containers in their dependsOn order (a container others wait on for
//     SUCCESS runs to exit 0 first), each with its command, environment
//     and `secrets` resolved from the Secrets Manager stand-in, then each
//     container's health check command, run until it passes;
//   - the admin task definition's container, with its command overridden
//     as the operator runs it (`pickup tokens create`, as
//     `aws ecs run-task --overrides` does), and with its own command;
//   - the Lambda function: its handler, runtime and environment, under the
//     Runtime Interface Emulator, invoked with API Gateway's payload 2.0.
//
// Then it pins a DAG held by a trustless gateway on loopback through the
// Lambda (POST /pins with the operator's token), connects to every
// delegate the answer names with a libp2p host, waits for the pin to be
// pinned, reads it back (GET /pins/{id}, GET /pins), reads the CAR from
// the carpark bucket, and asks the serve task what its load balancer
// would (the target group's health check path, then GET
// /ipfs/<root>?format=car, which must be that CAR byte for byte), and
// connects to its libp2p host on TCP and QUIC, as its network load
// balancer would, finding the peer of the key the operator wrote. It
// sends a CAR through the Lambda, which the fetcher pins from the uploads
// bucket (and one over the Lambda's cap, refused: deploy_upload_test.go). It changes the views app role's password (and,
// with the PostgreSQL event log, the log's app role's) as README.md says
// (a new secret value, the projector service restarted) and pins again
// through the same Lambda and fetcher. It checks that the
// fetcher protected its task from scale-in while fetching, and that every
// health check passes.
//
// Every role runs with PICKUP_TEST_AWS_CALLS, and every AWS call it made
// must be one of its calls in internal/awsconfig's table (whose entries
// TestIAMFromCode checks against the plan's policies); every secret it
// read must be one its table names through its settings; every S3 request
// it made is evaluated, on its bucket and key, against its role's
// policies in the plan.
//
// What cannot run here, and what stands in:
//
//   - the Lambda's zip holds a linux/arm64 bootstrap, which this amd64
//     machine cannot run: the bootstrap is a host build of ./cmd/pickup
//     with scripts/build-lambda.sh's flags (-tags lambda.norpc -trimpath
//     -ldflags "-s -w", CGO_ENABLED=0);
//   - containers cannot run here (no engine): the tasks run the image's
//     binary, unpacked from the layout PICKUP_IMAGE names (make test sets
//     it to bin/image), with the image's environment under the
//     container's; without PICKUP_IMAGE, a host build of ./cmd/pickup
//     (ko builds the image's binary from the same sources, -trimpath,
//     CGO_ENABLED=0) stands in (deploy_image_test.go);
//   - containers are processes of one machine: each gets a working
//     directory of its own, and their listen addresses are moved to
//     loopback ports of their own (rewriteEnv);
//   - the roles' AWS credentials are versitygw's keys (Lambda and ECS give
//     the role's credentials; the stand-ins check none but S3's).
func TestDeployment(t *testing.T) {
	terraformBinary(t)
	need(t, "go", "the roles are built with the Go toolchain")
	rieBinary(t)
	bins := t.TempDir()
	image := imageForTasks(t, bins)
	t.Logf("tasks run %s", image.from)
	bootstrap := filepath.Join(bins, "lambda", "bootstrap")
	buildPickup(t, bootstrap, "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w")
	for _, v := range []struct {
		name, env string
		extra     []string
	}{
		{"dev", "dev", nil},
		{"prod", "prod", nil},
		// EventStoreDB as the event log: its connection string injected,
		// the embedded log standing in for the cluster.
		{"dev-esdb", "dev", []string{"eventlog=esdb"}},
		// Private fetchers: the Lambda answers the static delegates.
		{"dev-private-fetchers", "dev", []string{"fetchers_public=false", `delegates=["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWR3DeCKahEqXtP8KvuG3XBeLZTU55yktXSmy8g4Phh6BV"]`}},
	} {
		t.Run(v.name, func(t *testing.T) {
			dep := &deploymentRun{t: t, image: image, bootstrap: bootstrap}
			dep.run(v.env, v.extra...)
		})
	}
}

type deploymentRun struct {
	t         *testing.T
	image     taskImage
	bootstrap string
	d         *deployment
	w         *world
	roles     []wiredRole
	origin    string

	mu    sync.Mutex
	procs []*container
	tasks map[string]*awstest.ECSTask // the running task of each family
}

func (r *deploymentRun) run(env string, extra ...string) {
	t := r.t
	ctx := context.Background()
	r.d = planFor(t, env, extra...)
	r.roles = wiredRoles(t, r.d)
	r.w = startWorld(t, r.d, r.roles, r.image.binary)
	t.Cleanup(r.stopAll)

	// The content to pin, on a trustless gateway on loopback.
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 3 << 20, Seed: 15, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	r.origin = ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{}).URL()

	// The services' tasks, the projector's first.
	services := r.d.all("aws_ecs_service")
	if len(services) == 0 {
		t.Fatalf("envs/%s has no ECS service", env)
	}
	sort.SliceStable(services, func(i, j int) bool {
		return strings.Contains(services[i].str("name"), "projector") && !strings.Contains(services[j].str("name"), "projector")
	})
	for _, svc := range services {
		td, ok := r.d.byAttr("aws_ecs_task_definition", "arn", svc.str("task_definition"))
		if !ok {
			t.Fatalf("%s runs task definition %q, which is not in the plan", svc.Address, svc.str("task_definition"))
		}
		r.startTask(td.str("family"), svc.str("cluster"))
	}
	r.checkViewsEndpoints()
	r.checkEventLogEndpoints()

	// The operator's token, from the admin task definition.
	token := r.adminToken()

	// The Lambda.
	gw := r.startGateway()
	cl, err := client.New(client.Config{BaseURL: r.apiURL(), Token: token, HTTPClient: &http.Client{Transport: gw, Timeout: time.Minute}, Poll: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.pin(ctx, cl, root, true)
	// A CAR sent to the Lambda, pinned from the uploads bucket.
	r.pinCAR(ctx, cl)

	// The app role's password changed as README.md says (a new value in
	// the secret, the projector service restarted: its views-setup sets
	// it): the running Lambda and fetcher must pick it up at their next
	// connection, without a restart. Their connections are closed by the
	// server first (as a proxy's or a pool's end of life would), so that
	// they must open new ones.
	r.rotateAppPassword(ctx)
	second, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 1 << 20, Seed: 16, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	r.pin(ctx, cl, second, false)

	// The fetcher protected its task from scale-in while it fetched, and
	// lifted it after (through the ECS agent ECS_AGENT_URI names).
	r.checkProtection()

	// Every health check passes once the tasks are up.
	for _, c := range r.running() {
		r.healthCheck(c)
	}
	r.checkCalls()
}

// pin pins root through the Lambda and reads it back: its status
// (GET /pins/{id}, GET /pins), its CAR in the carpark bucket, and that CAR
// from the serve task (GET /ipfs/<root>?format=car); with delegates, it
// connects to every delegate the answer names.
func (r *deploymentRun) pin(ctx context.Context, cl *client.Client, root cid.Cid, delegates bool) {
	pinCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	ps, err := cl.Add(pinCtx, api.Pin{CID: root.String(), Name: "deployment test"}, "")
	if err != nil {
		r.fail("POST /pins through the Lambda: %v", err)
	}
	if delegates {
		r.checkDelegates(pinCtx, ps.Delegates)
	}
	final, err := cl.Wait(pinCtx, ps, nil)
	if err != nil || final.Status != api.StatusPinned {
		r.fail("pin %s: %+v, %v; want pinned", ps.RequestID, final, err)
	}
	again, err := cl.Get(pinCtx, ps.RequestID)
	if err != nil || again.Status != api.StatusPinned || again.Pin.CID != root.String() {
		r.fail("GET /pins/%s: %+v, %v", ps.RequestID, again, err)
	}
	list, err := cl.List(pinCtx, client.ListOptions{})
	if err != nil || !slices.ContainsFunc(list.Results, func(p api.PinStatus) bool { return p.RequestID == ps.RequestID && p.Status == api.StatusPinned }) {
		r.fail("GET /pins: %+v, %v; want %s pinned", list, err, ps.RequestID)
	}
	r.checkCAR(ctx, root)
	// The serving role answers it as its load balancer would ask.
	r.checkServe(ctx, root)
}

// rotateAppPassword changes the views app role's password (and the
// PostgreSQL event log's app role's) as terraform/README.md says: a new value in the app secret (every
// stand-in), then the projector service restarted (its task's containers
// stopped, the task started again: views-setup sets the new password).
// Then the server ends every other connection of the app role.
func (r *deploymentRun) rotateAppPassword(ctx context.Context) {
	t := r.t
	if r.w.appSecretARN == "" {
		t.Fatal("no secret of the plan holds the views app role's login")
	}
	// With the PostgreSQL event log, its app role's password changes the
	// same way (events-setup sets it).
	logins := map[string]string{r.w.appSecretARN: r.w.appUser}
	if r.w.logUser != "" {
		logins[r.w.logSecretARN] = r.w.logUser
	}
	for arn, user := range logins {
		old, _ := r.w.secrets.Get(arn)
		rotated := old
		rotated.Value = mustJSON(t, map[string]string{"username": user, "password": randomString(t, 48)})
		r.w.secrets.Put(rotated)
		for _, c := range r.all() {
			if c.secrets != nil {
				c.secrets.Put(rotated)
			}
		}
	}
	var family, cluster string
	for _, svc := range r.d.all("aws_ecs_service") {
		if strings.Contains(svc.str("name"), "projector") {
			td, _ := r.d.byAttr("aws_ecs_task_definition", "arn", svc.str("task_definition"))
			family, cluster = td.str("family"), svc.str("cluster")
		}
	}
	if family == "" {
		t.Fatal("no projector service to restart")
	}
	for _, c := range r.running() {
		if c.family == family {
			c.cmd.Process.Signal(os.Interrupt)
			select {
			case <-c.done:
			case <-time.After(2 * time.Minute):
				r.fail("%s did not stop on SIGINT", c.name)
			}
		}
	}
	r.startTask(family, cluster)
	for _, c := range r.running() {
		if c.family == family {
			r.healthCheck(c)
		}
	}
	conn, err := pgx.Connect(ctx, r.w.pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The server ends every other connection of the app roles, as a
	// failover would: the running Lambda and fetcher log in again with the
	// rotated passwords (the views' secret and the log's are read again by
	// each new connection), and the operation that found its connection
	// dead is done again on a fresh one.
	users := []string{r.w.appUser}
	if r.w.logUser != "" {
		users = append(users, r.w.logUser)
	}
	for _, user := range users {
		var ended int
		if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1`, user).Scan(&ended); err != nil {
			t.Fatal(err)
		}
		t.Logf("app role %s's password changed, projector restarted, %d connections of the role ended", user, ended)
	}
}

// fail ends the test (stopAll then logs every role's output).
func (r *deploymentRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf(format, args...)
}

func (r *deploymentRun) dumpLogs() {
	for _, c := range r.all() {
		b, _ := os.ReadFile(c.logPath)
		const keep = 8000
		if len(b) > keep {
			b = append([]byte("...\n"), b[len(b)-keep:]...)
		}
		r.t.Logf("---- %s (%s) log:\n%s", c.name, c.role, b)
	}
}

// apiURL is the plan's api_url output (the transport sends every request to
// the function whatever the host).
func (r *deploymentRun) apiURL() string {
	if u, ok := r.d.outputs["api_url"].(string); ok && strings.HasPrefix(u, "https://") {
		return u
	}
	r.t.Fatalf("envs/%s: output api_url is %v, want an https:// URL", r.d.env, r.d.outputs["api_url"])
	return ""
}

// adminToken runs the admin task definition's container twice, as the
// operator would: with the command override terraform/README.md's `aws
// ecs run-task --overrides` gives (`tokens create`), whose token it
// returns, and with its own command, which must succeed. The task
// definition is the one the admin_task output names.
func (r *deploymentRun) adminToken() string {
	t := r.t
	var admin *wiredRole
	for i, w := range r.roles {
		if w.role == awsconfig.RoleAdmin {
			if admin != nil {
				t.Fatalf("two admin containers: %s and %s", admin.where, w.where)
			}
			admin = &r.roles[i]
		}
	}
	if admin == nil {
		t.Fatalf("envs/%s has no admin task definition (a container whose command is an operator's command, for `pickup tokens create`)", r.d.env)
	}
	td, _ := r.d.byAttr("aws_ecs_task_definition", "family", admin.family)
	// README.md's run-task reads cluster, task_definition, subnets and
	// security_group from the admin_task output; run-task takes the task
	// definition's ARN, or its family for the latest revision.
	output, _ := r.d.outputs["admin_task"].(map[string]any)
	if output == nil || (output["task_definition"] != td.str("arn") && output["task_definition"] != td.str("family")) {
		t.Errorf("output admin_task is %v: want its task_definition to be %s or %s (%s)", r.d.outputs["admin_task"], td.str("arn"), td.str("family"), td.Address)
	}
	if _, ok := r.d.byAttr("aws_ecs_cluster", "name", fmt.Sprint(output["cluster"])); !ok {
		t.Errorf("output admin_task names cluster %v, which is not the plan's ECS cluster", output["cluster"])
	}
	if _, ok := r.d.byAttr("aws_security_group", "id", fmt.Sprint(output["security_group"])); !ok {
		t.Errorf("output admin_task names security group %v, which is not in the plan", output["security_group"])
	}
	subnets, _ := output["subnets"].([]any)
	if len(subnets) == 0 {
		t.Errorf("output admin_task names no subnets: %v", output["subnets"])
	}
	for _, sn := range subnets {
		if _, ok := r.d.byAttr("aws_subnet", "id", fmt.Sprint(sn)); !ok {
			t.Errorf("output admin_task names subnet %v, which is not in the plan", sn)
		}
	}
	name, command := readmeOverride(t)
	if name != admin.container.Name {
		t.Fatalf("README's run-task override names container %q; the admin task's container is %q", name, admin.container.Name)
	}
	tenant := ""
	for i, a := range command {
		if a == "--tenant" && i+1 < len(command) {
			tenant = command[i+1]
		}
	}
	if len(command) < 2 || command[0] != "tokens" || command[1] != "create" || tenant == "" {
		t.Fatalf("README's run-task override runs %q: want tokens create --tenant NAME", command)
	}
	task := awstest.NewECSTask(t, "", admin.family, []string{admin.container.Name}, "127.0.0.1")
	run := func(command []string) (string, error) {
		c := r.startContainer(*admin, task, command)
		select {
		case <-c.done:
		case <-time.After(2 * time.Minute):
			r.fail("%s %q did not end", c.name, command)
		}
		out, _ := os.ReadFile(c.logPath)
		return string(out), c.err
	}
	out, err := run(command)
	if err != nil {
		r.fail("%s: tokens create: %v\n%s", admin.where, err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	token := ""
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "token:"); ok {
			token = strings.TrimSpace(v)
		}
	}
	if token == "" {
		r.fail("tokens create printed no token:\n%s", out)
	}
	// Its own command must work too; the pin's steps go on either way,
	// so that one run reports every step that fails.
	own, err := run(nil)
	switch {
	case err != nil:
		t.Errorf("%s's own command %q fails: %v\n%s", admin.where, admin.container.Command, err, own)
	case slices.Equal(admin.container.Command, []string{"tokens", "ls"}) && !strings.Contains(own, tenant):
		t.Errorf("%s's own command (tokens ls) does not list the tenant just made:\n%s", admin.where, own)
	}
	return token
}

// readmeOverride returns the container name and command of the
// `--overrides '{"containerOverrides":[...]}'` terraform/README.md gives
// `aws ecs run-task`.
func readmeOverride(t *testing.T) (string, []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "terraform", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`--overrides '([^']+)'`).FindSubmatch(b)
	if m == nil {
		t.Fatal("terraform/README.md gives no `aws ecs run-task --overrides '...'` for the admin task")
	}
	var o struct {
		ContainerOverrides []struct {
			Name    string   `json:"name"`
			Command []string `json:"command"`
		} `json:"containerOverrides"`
	}
	if err := json.Unmarshal(m[1], &o); err != nil || len(o.ContainerOverrides) != 1 {
		t.Fatalf("README's run-task --overrides %s: %v; want one container override", m[1], err)
	}
	return o.ContainerOverrides[0].Name, o.ContainerOverrides[0].Command
}

// startGateway starts the Lambda function as the plan wires it and returns
// a transport to it shaped as its API Gateway integration.
func (r *deploymentRun) startGateway() *apiGatewayV2 {
	t := r.t
	fns := r.d.all("aws_lambda_function")
	if len(fns) != 1 {
		t.Fatalf("envs/%s: %d Lambda functions, want 1", r.d.env, len(fns))
	}
	fn := fns[0]
	if fn.str("handler") != "bootstrap" || !strings.HasPrefix(fn.str("runtime"), "provided.") {
		t.Fatalf("%s: handler %q, runtime %q: the zip holds an executable bootstrap for an OS-only runtime (provided.*)", fn.Address, fn.str("handler"), fn.str("runtime"))
	}
	if zip := os.Getenv(lambdaZipEnv); zip != "" {
		checkZipHolds(t, zip, fn.str("handler"))
	}
	var integration tfResource
	for _, in := range r.d.all("aws_apigatewayv2_integration") {
		if in.str("integration_uri") == fn.str("invoke_arn") {
			integration = in
		}
	}
	if integration.Address == "" {
		t.Fatalf("no API Gateway integration invokes %s", fn.Address)
	}
	if integration.str("integration_type") != "AWS_PROXY" || integration.str("payload_format_version") != "2.0" {
		t.Fatalf("%s: %s payload %s; the transport speaks AWS_PROXY 2.0", integration.Address, integration.str("integration_type"), integration.str("payload_format_version"))
	}
	route, stage := "$default", "$default"
	for _, rt := range r.d.all("aws_apigatewayv2_route") {
		if rt.str("api_id") == integration.str("api_id") && rt.str("target") == "integrations/"+integration.str("id") {
			route = rt.str("route_key")
		}
	}
	for _, st := range r.d.all("aws_apigatewayv2_stage") {
		if st.str("api_id") == integration.str("api_id") {
			stage = st.str("name")
		}
	}
	if route != "$default" || stage != "$default" {
		t.Fatalf("route %q, stage %q: the test sends every path to the $default route of the $default stage", route, stage)
	}
	w := wiredRole{}
	for _, wr := range r.roles {
		if wr.role == awsconfig.RoleGateway {
			w = wr
		}
	}
	c := &container{name: fn.str("function_name"), role: awsconfig.RoleGateway, dir: t.TempDir(), done: make(chan struct{}), roleARN: fn.str("role")}
	c.logPath = filepath.Join(r.w.dir, "lambda.log")
	c.calls = c.logPath + ".aws-calls"
	env := r.rewriteEnv(t, w)
	env["AWS_REGION"] = "us-east-1"
	env["AWS_DEFAULT_REGION"] = "us-east-1"
	env["AWS_LAMBDA_FUNCTION_NAME"] = fn.str("function_name")
	env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = fmt.Sprint(fn.Values["memory_size"])
	env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = fmt.Sprint(fn.Values["timeout"])
	env["_HANDLER"] = fn.str("handler")
	c.env = r.processEnv(env, c)
	logs, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	lf := startLambda(t, r.bootstrap, c.env, logs)
	c.cmd, c.done = lf.cmd, lf.done
	r.mu.Lock()
	r.procs = append(r.procs, c)
	r.mu.Unlock()
	return &apiGatewayV2{fn: lf, apiID: integration.str("api_id"), routeKey: route, stage: stage}
}
