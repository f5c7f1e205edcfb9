package terraform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/internal/awsconfig"
	"github.com/pickup-ipfs/pickup/terraform/internal/awstest"
)

// The tasks: each container of a task definition started as ECS starts it,
// as a process of this machine.

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
	listenPort = regexp.MustCompile(`^(0\.0\.0\.0)?:(\d+)$`)
)

// rewriteEnv is a container's (or the function's) environment as wired,
// with the only rewrites this one machine needs, each for a reason:
//
//   - the plan's database endpoints (host:port) → the PostgreSQL server's
//     loopback address (hostTable);
//   - an address to listen on of all interfaces (":9464",
//     PICKUP_ADMIN_ADDR; "0.0.0.0:8080", PICKUP_SERVE_ADDR) → a free port
//     on 127.0.0.1: every task has its own network on ECS, here they share
//     one;
//   - /ip4/0.0.0.0/tcp|udp/PORT (PICKUP_LIBP2P_LISTEN) → the same on a
//     port free for both TCP and UDP, for the same reason; it stays on all
//     interfaces, as on ECS, where the task's private address is the one
//     PICKUP_LIBP2P_PUBLIC_IP=ecs replaces by the public IP (the EC2
//     stand-in answers 127.0.0.1, so the announced address is dialed on
//     loopback);
//   - a fetcher's sources get the loopback trustless gateway
//     (PICKUP_TRUSTLESS_GATEWAYS, PICKUP_ALLOW_PRIVATE_ORIGINS=true to
//     dial it: it is on loopback) in place of the public IPFS network;
//   - the IPNI indexers (PICKUP_IPNI_INDEXERS, prod's cid.contact) → the
//     world's one indexer stand-in, since this machine reaches no internet.
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
	if _, ok := env["PICKUP_IPNI_INDEXERS"]; ok {
		env["PICKUP_IPNI_INDEXERS"] = r.w.indexer.URL
	}
	if w.role == awsconfig.RoleFetcher {
		env["PICKUP_TRUSTLESS_GATEWAYS"] = r.origin
		env["PICKUP_ALLOW_PRIVATE_ORIGINS"] = "true"
	}
	return env
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
