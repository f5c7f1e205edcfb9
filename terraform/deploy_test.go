package terraform

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/jackc/pgx/v5"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/api/client"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/awsconfig"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/terraform/internal/awstest"
)

// TestDeployment runs what Terraform wires. From the applied plan of
// envs/dev and envs/prod (deploy_plan_test.go), and of dev with private
// fetchers and static delegates, it starts every role as the plan
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
// pinned, reads it back (GET /pins/{id}, GET /pins) and reads the CAR from
// the carpark bucket. It changes the views app role's password as
// README.md says (a new secret value, the projector service restarted) and
// pins again through the same Lambda and fetcher. It checks that the
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
	r.w = startWorld(t, r.d, r.roles)
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

	// The operator's token, from the admin task definition.
	token := r.adminToken()

	// The Lambda.
	gw := r.startGateway()
	cl, err := client.New(client.Config{BaseURL: r.apiURL(), Token: token, HTTPClient: &http.Client{Transport: gw, Timeout: time.Minute}, Poll: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.pin(ctx, cl, root, true)

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
// (GET /pins/{id}, GET /pins) and its CAR in the carpark bucket; with
// delegates, it connects to every delegate the answer names.
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
}

// rotateAppPassword changes the views app role's password as
// terraform/README.md says: a new value in the app secret (every
// stand-in), then the projector service restarted (its task's containers
// stopped, the task started again: views-setup sets the new password).
// Then the server ends every other connection of the app role.
func (r *deploymentRun) rotateAppPassword(ctx context.Context) {
	t := r.t
	if r.w.appSecretARN == "" {
		t.Fatal("no secret of the plan holds the views app role's login")
	}
	old, _ := r.w.secrets.Get(r.w.appSecretARN)
	rotated := old
	rotated.Value = mustJSON(t, map[string]string{"username": r.w.appUser, "password": randomString(t, 48)})
	r.w.secrets.Put(rotated)
	for _, c := range r.all() {
		if c.secrets != nil {
			c.secrets.Put(rotated)
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
	var ended int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1`, r.w.appUser).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	t.Logf("app role's password changed, projector restarted, %d connections of the app role ended", ended)
}

// checkViewsEndpoints checks which database endpoint each role is given,
// which the world cannot tell apart (both are one server here): the
// Lambda the RDS Proxy (its many short-lived instances would exhaust the
// cluster's connections), views-setup the cluster's writer (an RDS Proxy
// pins, and refuses some, of the statements it runs), and no role a reader.
func (r *deploymentRun) checkViewsEndpoints() {
	t := r.t
	cluster := r.d.one(t, "aws_rds_cluster", "")
	proxies := r.d.all("aws_db_proxy")
	hostOf := func(w wiredRole) string {
		u, err := url.Parse(w.env["PICKUP_VIEWS"])
		if err != nil {
			return ""
		}
		return u.Hostname()
	}
	for _, w := range r.roles {
		host := hostOf(w)
		switch {
		case host == "":
			continue
		case host == cluster.str("reader_endpoint"):
			t.Errorf("%s is given the cluster's reader endpoint %s: the views are written", w.where, host)
		case w.role == awsconfig.RoleGateway && (len(proxies) == 0 || host != proxies[0].str("endpoint")):
			t.Errorf("the Lambda's views are at %s, not the RDS Proxy", host)
		case w.role == awsconfig.RoleViewsSetup && host != cluster.str("endpoint"):
			t.Errorf("views-setup connects to %s, not the cluster's writer endpoint %s", host, cluster.str("endpoint"))
		}
	}
}

// checkProtection checks that each fetcher task's protection was set and
// is lifted now that its pins are done.
func (r *deploymentRun) checkProtection() {
	r.mu.Lock()
	defer r.mu.Unlock()
	checked := 0
	for _, w := range r.roles {
		if w.role != awsconfig.RoleFetcher || r.tasks[w.family] == nil {
			continue
		}
		checked++
		on, changes := r.tasks[w.family].Protection()
		if changes < 2 || on {
			r.t.Errorf("task %s: scale-in protection changed %d times, on now: %v; want set while fetching and lifted after", w.family, changes, on)
		}
	}
	if checked == 0 {
		r.t.Error("no fetcher task ran")
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

// container is a running container (a process).
type container struct {
	name    string // family/container
	family  string // its task definition's ("" for the Lambda)
	role    string
	def     containerDef
	env     []string
	dir     string
	logPath string
	calls   string // its PICKUP_TEST_AWS_CALLS file
	// secrets is its own Secrets Manager stand-in (holding the world's
	// secrets), so that what it reads is known; s3 its own recorder in
	// front of versitygw, so that what it touches is known.
	secrets *awstest.SecretsManager
	s3      *awstest.Recorder
	roleARN string // the IAM role its calls are made with
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

func (r *deploymentRun) all() []*container {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.procs)
}

func (r *deploymentRun) running() []*container {
	var out []*container
	for _, c := range r.all() {
		select {
		case <-c.done:
		default:
			out = append(out, c)
		}
	}
	return out
}

func (r *deploymentRun) stopAll() {
	for _, c := range r.running() {
		c.cmd.Process.Signal(os.Interrupt)
	}
	for _, c := range r.all() {
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
	}
	if r.t.Failed() {
		r.dumpLogs()
	}
}

// rolesOf returns the wired containers of a task family.
func (r *deploymentRun) rolesOf(family string) []wiredRole {
	var out []wiredRole
	for _, w := range r.roles {
		if w.family == family {
			out = append(out, w)
		}
	}
	return out
}

// startTask starts a task of family as ECS does: the containers others
// wait on first, to their condition, then the rest.
func (r *deploymentRun) startTask(family, cluster string) {
	t := r.t
	wired := r.rolesOf(family)
	if len(wired) == 0 {
		t.Fatalf("task definition %s has no containers", family)
	}
	var names []string
	for _, w := range wired {
		names = append(names, w.container.Name)
	}
	task := awstest.NewECSTask(t, cluster, family, names, "127.0.0.1")
	r.mu.Lock()
	if r.tasks == nil {
		r.tasks = map[string]*awstest.ECSTask{}
	}
	r.tasks[family] = task
	r.mu.Unlock()
	started := map[string]*container{}
	for len(started) < len(wired) {
		progress := false
		for _, w := range wired {
			if started[w.container.Name] != nil {
				continue
			}
			ready := true
			for _, dep := range w.container.DependsOn {
				c := started[dep.ContainerName]
				if c == nil {
					ready = false
					break
				}
				r.waitCondition(c, dep.Condition)
			}
			if !ready {
				continue
			}
			started[w.container.Name] = r.startContainer(w, task, nil)
			progress = true
		}
		if !progress {
			t.Fatalf("task %s: the containers' dependsOn form a cycle or name a missing container", family)
		}
	}
}

// waitCondition waits for a container to reach a dependsOn condition.
func (r *deploymentRun) waitCondition(c *container, condition string) {
	t := r.t
	switch condition {
	case "START":
		return
	case "HEALTHY":
		r.healthCheck(c)
		return
	case "COMPLETE", "SUCCESS":
		select {
		case <-c.done:
		case <-time.After(3 * time.Minute):
			r.fail("%s did not exit, and its task's other containers wait for it (%s)", c.name, condition)
		}
		if condition == "SUCCESS" && c.err != nil {
			r.fail("%s exited with %v; its task's other containers wait for it to succeed", c.name, c.err)
		}
		return
	}
	t.Fatalf("%s: dependsOn condition %q", c.name, condition)
}

// startContainer starts one container of a task; command, when not nil,
// overrides the definition's (as run-task's containerOverrides do).
func (r *deploymentRun) startContainer(w wiredRole, task *awstest.ECSTask, command []string) *container {
	t := r.t
	def := w.container
	if command == nil {
		command = def.Command
	}
	if def.Image == "" || !strings.Contains(def.Image, ".dkr.ecr.") {
		t.Errorf("%s: image %q is not in the deployment's ECR repository", w.where, def.Image)
	}
	c := &container{name: w.where, family: w.family, role: w.role, def: def, dir: t.TempDir(), done: make(chan struct{}), roleARN: w.roleARN}
	c.logPath = filepath.Join(r.w.dir, strings.ReplaceAll(w.where, "/", "_")+fmt.Sprintf("-%d.log", len(r.all())))
	c.calls = c.logPath + ".aws-calls"
	c.env = r.containerEnv(t, w, task, c)
	// The container's entryPoint replaces the image's; its first word
	// must be the image's binary.
	entry := r.image.entrypoint
	if len(def.EntryPoint) > 0 {
		entry = def.EntryPoint
	}
	if entry[0] != r.image.entrypoint[0] {
		t.Fatalf("%s: entryPoint %q: the image's binary is %s", w.where, entry, r.image.entrypoint[0])
	}
	args := append(slices.Clone(entry[1:]), command...)
	logs, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(r.image.binary, args...)
	c.cmd.Dir = c.dir
	c.cmd.Env = c.env
	c.cmd.Stdout, c.cmd.Stderr = logs, logs
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", w.where, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		logs.Close()
		close(c.done)
	}()
	r.mu.Lock()
	r.procs = append(r.procs, c)
	r.mu.Unlock()
	t.Logf("started %s (%s): pickup %s", w.where, w.role, strings.Join(args, " "))
	return c
}

// containerEnv is what ECS gives a container, in this world: its
// environment (rewritten, rewriteEnv), its secrets' values, the task's
// metadata and agent endpoints, the region, and the stand-ins' endpoints
// through the SDK's AWS_ENDPOINT_URL_<SERVICE>.
func (r *deploymentRun) containerEnv(t *testing.T, w wiredRole, task *awstest.ECSTask, c *container) []string {
	env := r.rewriteEnv(t, w)
	for _, kv := range r.image.env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "PATH" && k != "HOME" {
			if _, set := env[k]; !set {
				env[k] = v
			}
		}
	}
	for _, s := range w.secrets {
		_, arn := secretResource(s.ValueFrom)
		secret, ok := r.w.secrets.Get(arn)
		if !ok {
			t.Fatalf("%s: secret %s comes from %s, which is neither in the plan nor the cluster's master secret", w.where, s.Name, s.ValueFrom)
		}
		value := secret.Value
		// valueFrom's ARN may name a JSON key: arn:...:secret:name-XXXXXX:key:stage:id.
		if parts := strings.Split(s.ValueFrom, ":"); len(parts) > 7 && parts[7] != "" {
			var m map[string]any
			if err := json.Unmarshal([]byte(value), &m); err != nil {
				t.Fatalf("%s: secret %s names key %q of %s, which holds no JSON", w.where, s.Name, parts[7], arn)
			}
			v, ok := m[parts[7]].(string)
			if !ok {
				t.Fatalf("%s: secret %s names key %q, which %s does not hold", w.where, s.Name, parts[7], arn)
			}
			value = v
		}
		env[s.Name] = r.w.mapHosts(value)
	}
	env["AWS_REGION"] = "us-east-1"
	env["AWS_DEFAULT_REGION"] = "us-east-1"
	env["ECS_CONTAINER_METADATA_URI_V4"] = task.MetadataURI
	env["ECS_AGENT_URI"] = task.AgentURI
	return r.processEnv(env, c)
}

// processEnv adds what every process of this world gets: the stand-ins'
// credentials and endpoints, and the file its AWS calls are recorded in.
func (r *deploymentRun) processEnv(env map[string]string, c *container) []string {
	env["AWS_ACCESS_KEY_ID"] = r.w.s3.AccessKey
	env["AWS_SECRET_ACCESS_KEY"] = r.w.s3.SecretKey
	env["AWS_EC2_METADATA_DISABLED"] = "true"
	c.s3 = awstest.NewRecorder(r.t, r.w.s3.Endpoint)
	env["AWS_ENDPOINT_URL_S3"] = c.s3.URL
	c.secrets = awstest.NewSecretsManager(r.t, r.w.secrets.Secrets()...)
	env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = c.secrets.URL
	env["AWS_ENDPOINT_URL_EC2"] = r.w.ec2.URL
	env[awsconfig.RecordEnv] = c.calls
	env["HOME"] = c.dir
	env["PATH"] = os.Getenv("PATH")
	var out []string
	for _, k := range sortedKeys(env) {
		out = append(out, k+"="+env[k])
	}
	return out
}

var (
	anyHostRe  = regexp.MustCompile(`/ip4/0\.0\.0\.0/(tcp|udp)/\d+`)
	listenPort = regexp.MustCompile(`^:(\d+)$`)
)

// rewriteEnv is a container's (or the function's) environment as wired,
// with the only rewrites this one machine needs, each for a reason:
//
//   - the plan's database endpoints (host:port) → the PostgreSQL server's
//     loopback address (hostTable);
//   - an address to listen on of all interfaces (":9464",
//     PICKUP_ADMIN_ADDR) → a free port on 127.0.0.1: every task has its
//     own network on ECS, here they share one;
//   - /ip4/0.0.0.0/tcp|udp/PORT (PICKUP_LIBP2P_LISTEN) → the same on a
//     port free for both TCP and UDP, for the same reason; it stays on all
//     interfaces, as on ECS, where the task's private address is the one
//     PICKUP_LIBP2P_PUBLIC_IP=ecs replaces by the public IP (the EC2
//     stand-in answers 127.0.0.1, so the announced address is dialed on
//     loopback);
//   - a fetcher's sources get the loopback trustless gateway
//     (PICKUP_TRUSTLESS_GATEWAYS, PICKUP_ALLOW_PRIVATE_ORIGINS=true to
//     dial it: it is on loopback) in place of the public IPFS network.
func (r *deploymentRun) rewriteEnv(t *testing.T, w wiredRole) map[string]string {
	env := map[string]string{}
	for k, v := range w.env {
		v = r.w.mapHosts(v)
		if m := listenPort.FindStringSubmatch(v); m != nil && strings.HasSuffix(k, "_ADDR") {
			v = freeLoopbackAddr(t)
		}
		if anyHostRe.MatchString(v) {
			port := freeLoopbackPort(t)
			v = anyHostRe.ReplaceAllStringFunc(v, func(s string) string {
				proto := anyHostRe.FindStringSubmatch(s)[1]
				return fmt.Sprintf("/ip4/0.0.0.0/%s/%d", proto, port)
			})
		}
		env[k] = v
	}
	if w.role == awsconfig.RoleFetcher {
		env["PICKUP_TRUSTLESS_GATEWAYS"] = r.origin
		env["PICKUP_ALLOW_PRIVATE_ORIGINS"] = "true"
	}
	return env
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

// checkZipHolds checks that the Lambda zip holds the handler at its root,
// executable.
func checkZipHolds(t *testing.T, zipPath, handler string) {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatalf("%s: %v", zipPath, err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == handler && f.Mode().Perm()&0o111 != 0 {
			return
		}
	}
	t.Errorf("%s holds no executable %q at its root: the provided runtime runs the handler named there", zipPath, handler)
}

// checkCAR reads the root's CAR from the carpark bucket: a CARv1 whose one
// root is root.
func (r *deploymentRun) checkCAR(ctx context.Context, rootCID cid.Cid) {
	root := rootCID.String()
	t := r.t
	var carpark string
	for _, w := range r.roles {
		if b := w.env["PICKUP_CARPARK_BUCKET"]; b != "" {
			carpark = b
		}
	}
	if carpark == "" {
		t.Fatal("no role is given PICKUP_CARPARK_BUCKET")
	}
	key := carstore.RootKey(rootCID)
	obj, err := r.w.s3.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(carpark), Key: aws.String(key)})
	if err != nil {
		r.fail("the CAR of %s in the carpark bucket %s (%s): %v", root, carpark, key, err)
	}
	defer obj.Body.Close()
	br, err := carv2.NewBlockReader(obj.Body)
	if err != nil {
		r.fail("s3://%s/%s is no CAR: %v", carpark, key, err)
	}
	if len(br.Roots) != 1 || br.Roots[0].String() != root {
		r.fail("s3://%s/%s has roots %v, want %s", carpark, key, br.Roots, root)
	}
	n := 0
	for {
		_, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.fail("s3://%s/%s: block %d: %v", carpark, key, n, err)
		}
		n++
	}
	if n < 2 {
		r.fail("s3://%s/%s holds %d blocks: a 3 MiB file has more", carpark, key, n)
	}
	t.Logf("carpark: s3://%s/%s, %d blocks, root %s", carpark, key, n, root)
}

// healthCheck runs a container's health check command with its
// environment until it passes, as ECS does (HEALTHY within the start
// period and its retries); a container without one has nothing to check.
func (r *deploymentRun) healthCheck(c *container) {
	t := r.t
	hc := c.def.HealthCheck
	if hc == nil {
		return
	}
	if len(hc.Command) < 2 || (hc.Command[0] != "CMD" && hc.Command[0] != "CMD-SHELL") {
		t.Fatalf("%s: health check command %q: want CMD or CMD-SHELL and a command", c.name, hc.Command)
	}
	var cmd []string
	if hc.Command[0] == "CMD" {
		cmd = slices.Clone(hc.Command[1:])
	} else {
		cmd = []string{"/bin/sh", "-c", strings.Join(hc.Command[1:], " ")}
	}
	for i, a := range cmd {
		cmd[i] = strings.ReplaceAll(a, r.image.entrypoint[0], r.image.binary)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-c.done:
			r.fail("%s exited (%v) before its health check passed", c.name, c.err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(max(hc.Timeout, 5))*time.Second)
		run := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
		run.Env = c.env
		run.Dir = c.dir
		out, err := run.CombinedOutput()
		cancel()
		if err == nil {
			t.Logf("%s: health check %q passes", c.name, hc.Command)
			return
		}
		if time.Now().After(deadline) {
			r.fail("%s: health check %q still fails: %v\n%s", c.name, hc.Command, err, bytes.TrimSpace(out))
		}
		time.Sleep(time.Second)
	}
}

// checkSecretsRead checks that every secret a process read is one its
// role's table names through a setting, as that process's settings name
// it: the calls TestIAMFromCode checks against the policies are the calls
// made, down to the resource.
func (r *deploymentRun) checkSecretsRead(c *container) {
	env := map[string]string{}
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, arn := range c.secrets.Reads() {
		ok := false
		for _, call := range awsconfig.Calls(c.role) {
			if call.Operation != "Secrets Manager GetSecretValue" {
				continue
			}
			if got, set, err := call.Resource.ARN(func(n string) string { return env[n] }, ""); err == nil && set && got == arn {
				ok = true
			}
		}
		if !ok {
			r.t.Errorf("%s (%s) read secret %s, which no GetSecretValue entry of its table names through its settings", c.name, c.role, arn)
		}
	}
}

// checkS3Requests evaluates every S3 request a process made, on the very
// bucket and key, against the policies of the IAM role it runs with in the
// plan: what the table's resource forms stand for is what the code does.
func (r *deploymentRun) checkS3Requests(c *container) {
	reqs := c.s3.Requests()
	if len(reqs) == 0 {
		return
	}
	policies := rolePolicies(r.t, r.d, c.roleARN)
	denied := map[string]bool{}
	for _, req := range reqs {
		action, resource, err := s3Action(req)
		if err != nil {
			r.t.Errorf("%s: %v", c.name, err)
			continue
		}
		if ok, why := allows(policies, action, resource); !ok && !denied[action+" "+resource] {
			denied[action+" "+resource] = true
			r.t.Errorf("%s made %s %s: %s on %s is not allowed by %s: %s", c.name, req.Method, req.Path, action, resource, c.roleARN, why)
		}
	}
	r.t.Logf("%s: %d S3 requests, each allowed by %s", c.name, len(reqs), c.roleARN)
}

// checkDelegates checks the delegates a pin's answer names: the static
// list the function is given (PICKUP_DELEGATES), if any; otherwise each a
// multiaddr with a peer id, at which a libp2p host on loopback connects
// to that very peer (a live fetcher's libp2p host).
func (r *deploymentRun) checkDelegates(ctx context.Context, delegates []string) {
	t := r.t
	if len(delegates) == 0 {
		r.fail("POST /pins answered no delegates")
	}
	for _, w := range r.roles {
		if static := w.env["PICKUP_DELEGATES"]; w.role == awsconfig.RoleGateway && static != "" {
			want := strings.Split(static, ",")
			if !slices.Equal(slices.Sorted(slices.Values(delegates)), slices.Sorted(slices.Values(want))) {
				r.fail("POST /pins answered delegates %q; the function is given PICKUP_DELEGATES %q", delegates, want)
			}
			t.Logf("delegates: the static list %q", want)
			return
		}
	}
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, d := range delegates {
		ai, err := peer.AddrInfoFromString(d)
		if err != nil {
			r.fail("delegate %q: %v", d, err)
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = h.Connect(dctx, *ai)
		cancel()
		if err != nil {
			r.fail("delegate %q: no libp2p connection to %s: %v", d, ai.ID, err)
		}
		t.Logf("delegate %s: connected", d)
	}
}

// checkCalls checks each role's recorded AWS calls against its table, and
// that the fetcher's S3 calls were recorded at all.
func (r *deploymentRun) checkCalls() {
	t := r.t
	made := map[string]map[string]bool{}
	for _, c := range r.all() {
		r.checkSecretsRead(c)
		r.checkS3Requests(c)
		b, err := os.ReadFile(c.calls)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			if made[c.role] == nil {
				made[c.role] = map[string]bool{}
			}
			made[c.role][line] = true
			role := c.role
			if !awsconfig.Allows(role, line) {
				t.Errorf("%s (%s) called %q, which is not in internal/awsconfig's table for %s: add it there, and to the role's policy", c.name, c.role, line, role)
			}
		}
	}
	for role, ops := range made {
		t.Logf("AWS calls made by %s: %q", role, sortedKeys(ops))
	}
	if !made[awsconfig.RoleFetcher]["S3 CreateMultipartUpload"] {
		t.Errorf("no S3 CreateMultipartUpload recorded for the fetcher: was %s set?", awsconfig.RecordEnv)
	}
}
