package terraform

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/awsconfig"
)

// The plan as data.
//
// A plan alone leaves every computed attribute unknown (ARNs, ids,
// endpoints), and the roles cannot start from unknowns. So the deployment
// test runs the stub provider in mock mode (AWSSTUB_MOCK=1, package
// stubprovider): `terraform plan -out` plans every resource as its
// configuration says, `terraform apply` of that saved plan fills what the
// plan left unknown with deterministic fake values (Terraform itself checks
// that the result keeps every value the plan knew), into a local state in a
// temporary directory, and `terraform show -json` gives every value. The
// other way, resolving a plan's unknowns through its configuration
// references, would reimplement Terraform's evaluator; mock apply lets
// Terraform do all of it.

// tfResource is one resource or data source of `terraform show -json`.
type tfResource struct {
	Address string         `json:"address"`
	Mode    string         `json:"mode"`
	Type    string         `json:"type"`
	Name    string         `json:"name"`
	Index   any            `json:"index"`
	Values  map[string]any `json:"values"`
}

type tfModule struct {
	Address      string       `json:"address"`
	Resources    []tfResource `json:"resources"`
	ChildModules []tfModule   `json:"child_modules"`
}

type tfShow struct {
	Values struct {
		Outputs map[string]struct {
			Value any `json:"value"`
		} `json:"outputs"`
		RootModule tfModule `json:"root_module"`
	} `json:"values"`
}

// deployment is an environment's applied plan: every resource with its
// values, and the outputs.
type deployment struct {
	env       string
	resources []tfResource
	outputs   map[string]any
	// planned lists the addresses of the saved plan's resource changes.
	planned map[string]bool
}

// applyEnv deploys envs/<env> under the mock provider by following
// terraform/README.md's Deploying steps (readmeSteps), in a copy of the
// tree whose state is local, in a temporary directory: a file
// backend_override.tf (Terraform's override files) replaces the
// environment's backend, the one change made to the configuration. Each
// `terraform apply` of the steps is a `terraform plan -out` and an apply of
// that saved plan, with the step's variables, targets and exported TF_VAR_
// settings; a targeted apply must plan a change of each target. Each
// `terraform output` must answer. It returns the final state's
// `terraform show -json`. extra variables (name=value), if any, are given
// to every apply beside the steps' own: a variant of the deployment.
func applyEnv(t *testing.T, env string, extra ...string) *deployment {
	t.Helper()
	terraformBinary(t)
	plugins := stubPlugins(t)
	root := filepath.Join(copyTree(t), "envs", env)
	state := filepath.Join(t.TempDir(), "terraform.tfstate")
	override := fmt.Sprintf("terraform {\n  backend \"local\" {\n    path = %q\n  }\n}\n", state)
	if err := os.WriteFile(filepath.Join(root, "backend_override.tf"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	base := append(tfEnv(t), "AWSSTUB_MOCK=1")
	d := &deployment{env: env, outputs: map[string]any{}, planned: map[string]bool{}}
	applies, inits := 0, 0
	for _, step := range readmeSteps(t) {
		tfenv := append(slices.Clone(base), step.env...)
		switch step.args[0] {
		case "cd":
			continue
		case "make":
			for _, target := range step.args[1:] {
				checkMakeTarget(t, target)
			}
			continue
		case "terraform":
		default:
			checkTool(t, step.args[0])
			t.Logf("README step skipped (it needs AWS or a registry): %s", step.line)
			continue
		}
		var args []string
		for _, a := range step.args[1:] {
			if !strings.HasPrefix(a, "-chdir=") { // the steps' cd or -chdir name this environment
				args = append(args, a)
			}
		}
		switch args[0] {
		case "init":
			inits++
			if out, err := tf(t, tfenv, root, "init", "-input=false", "-plugin-dir="+plugins, "-lockfile=readonly"); err != nil {
				t.Fatalf("README step %q: terraform init: %v\n%s", step.line, err, out)
			}
		case "apply":
			applies++
			planFile := fmt.Sprintf("tfplan-%d", applies)
			plan := []string{"plan", "-input=false", "-out=" + planFile}
			for _, v := range append(flagValues(args, "var"), extra...) {
				plan = append(plan, "-var", v)
			}
			targets := flagValues(args, "target")
			for _, tg := range targets {
				plan = append(plan, "-target="+tg)
			}
			if out, err := tf(t, tfenv, root, plan...); err != nil {
				t.Fatalf("README step %q: terraform plan of envs/%s: %v\n%s", step.line, env, err, out)
			}
			changes := planChanges(t, tfenv, root, planFile)
			for _, tg := range targets {
				if !slices.ContainsFunc(changes, func(a string) bool { return a == tg || strings.HasPrefix(a, tg+"[") || strings.HasPrefix(a, tg+".") }) {
					t.Errorf("README step %q: the plan of envs/%s changes nothing at %s (it plans %q)", step.line, env, tg, changes)
				}
			}
			for _, a := range changes {
				d.planned[a] = true
			}
			if out, err := tf(t, tfenv, root, "apply", "-input=false", planFile); err != nil {
				t.Fatalf("README step %q: terraform apply of the mocked plan of envs/%s: %v\n%s", step.line, env, err, out)
			}
		case "output":
			out, err := tf(t, tfenv, root, args...)
			if err != nil || strings.TrimSpace(out) == "" {
				t.Errorf("README step %q in envs/%s: %v\n%s", step.line, env, err, out)
			}
		default:
			t.Errorf("README step %q: the test does not know terraform %s", step.line, args[0])
		}
	}
	if inits == 0 || applies == 0 {
		t.Fatalf("terraform/README.md's Deploying steps have %d terraform init and %d terraform apply: want both", inits, applies)
	}
	out, err := tf(t, base, root, "show", "-json")
	if err != nil {
		t.Fatalf("terraform show -json: %v\n%s", err, out)
	}
	var show tfShow
	if err := json.Unmarshal([]byte(out), &show); err != nil {
		t.Fatalf("terraform show -json: %v", err)
	}
	var walk func(m tfModule)
	walk = func(m tfModule) {
		d.resources = append(d.resources, m.Resources...)
		for _, c := range m.ChildModules {
			walk(c)
		}
	}
	walk(show.Values.RootModule)
	for k, v := range show.Values.Outputs {
		d.outputs[k] = v.Value
	}
	sort.Slice(d.resources, func(i, j int) bool { return d.resources[i].Address < d.resources[j].Address })
	return d
}

// planChanges lists the addresses a saved plan changes (no-ops left out).
func planChanges(t *testing.T, env []string, root, planFile string) []string {
	t.Helper()
	out, err := tf(t, env, root, "show", "-json", planFile)
	if err != nil {
		t.Fatalf("terraform show -json %s: %v\n%s", planFile, err, out)
	}
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("terraform show -json %s: %v", planFile, err)
	}
	var changes []string
	for _, rc := range plan.ResourceChanges {
		if !slices.Equal(rc.Change.Actions, []string{"no-op"}) && !slices.Equal(rc.Change.Actions, []string{"read"}) {
			changes = append(changes, rc.Address)
		}
	}
	return changes
}

// all returns the managed resources of a type.
func (d *deployment) all(typ string) []tfResource {
	var out []tfResource
	for _, r := range d.resources {
		if r.Mode == "managed" && r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// one returns the one managed resource of a type whose address ends with
// suffix, failing the test if there is not exactly one.
func (d *deployment) one(t *testing.T, typ, suffix string) tfResource {
	t.Helper()
	var found []tfResource
	for _, r := range d.all(typ) {
		if strings.HasSuffix(r.Address, suffix) {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		var addrs []string
		for _, r := range d.all(typ) {
			addrs = append(addrs, r.Address)
		}
		t.Fatalf("envs/%s: want one %s ending in %q, found %d among %q", d.env, typ, suffix, len(found), addrs)
	}
	return found[0]
}

// byAttr returns the managed resource of a type whose attribute attr is
// value, or false.
func (d *deployment) byAttr(typ, attr, value string) (tfResource, bool) {
	for _, r := range d.all(typ) {
		if s, _ := r.Values[attr].(string); s == value {
			return r, true
		}
	}
	return tfResource{}, false
}

// str is a string attribute of r ("" if unset or not a string).
func (r tfResource) str(attr string) string {
	s, _ := r.Values[attr].(string)
	return s
}

// list is a list attribute of r.
func (r tfResource) list(attr string) []any {
	l, _ := r.Values[attr].([]any)
	return l
}

// block is the first element of a nested block of r (nil if none).
func (r tfResource) block(attr string) map[string]any {
	if l := r.list(attr); len(l) > 0 {
		m, _ := l[0].(map[string]any)
		return m
	}
	return nil
}

// TestPlanValues checks the mock provider's apply of both environments:
// every resource has what the roles start from (ARNs, ids, endpoints) and
// the values the configuration set are as planned.
func TestPlanValues(t *testing.T) {
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			d := planFor(t, env)
			if len(d.resources) < 20 {
				t.Fatalf("only %d resources in the applied plan", len(d.resources))
			}
			for _, r := range d.resources {
				if r.Mode == "managed" && !d.planned[r.Address] {
					t.Errorf("%s is in the state but was not in the plan", r.Address)
				}
			}
			fn := d.one(t, "aws_lambda_function", "gateway")
			if got := fn.str("arn"); got != "arn:aws:lambda:us-east-1:123456789012:function:"+fn.str("function_name") {
				t.Errorf("Lambda ARN %q", got)
			}
			for _, b := range d.all("aws_s3_bucket") {
				if b.str("arn") != "arn:aws:s3:::"+b.str("bucket") || b.str("id") != b.str("bucket") {
					t.Errorf("%s: arn %q, id %q, bucket %q", b.Address, b.str("arn"), b.str("id"), b.str("bucket"))
				}
			}
			checkServePlan(t, d)
			for _, cluster := range d.all("aws_rds_cluster") {
				if s := cluster.block("master_user_secret"); s == nil || !strings.HasPrefix(s["secret_arn"].(string), "arn:aws:secretsmanager:") {
					t.Errorf("%s master_user_secret %v", cluster.Address, cluster.Values["master_user_secret"])
				}
				if !strings.HasSuffix(cluster.str("endpoint"), ".rds.amazonaws.com") {
					t.Errorf("%s endpoint %q", cluster.Address, cluster.str("endpoint"))
				}
			}
		})
	}
}

// checkServePlan checks the serving role's values in an applied plan: the
// load balancer's listener forwards to a target group whose port and
// health check are the serve container's (PICKUP_SERVE_ADDR's port,
// /healthz), the service registers that container with it from the
// private subnets, in a security group admitting the load balancers' only,
// and the serve_url output is the load balancer's DNS name; and its
// libp2p endpoint (checkServeLibp2p).
func checkServePlan(t *testing.T, d *deployment) {
	t.Helper()
	lb := d.one(t, "aws_lb", "serve.aws_lb.this")
	tg := d.one(t, "aws_lb_target_group", "serve.aws_lb_target_group.this")
	svc := d.one(t, "aws_ecs_service", "serve.aws_ecs_service.this")
	if lb.str("dns_name") == "" || lb.Values["internal"] != false || lb.str("load_balancer_type") != "application" {
		t.Errorf("%s: dns_name %q, internal %v, type %q: want an internet-facing ALB with a DNS name", lb.Address, lb.str("dns_name"), lb.Values["internal"], lb.str("load_balancer_type"))
	}
	if got := d.outputs["serve_url"]; got != "http://"+lb.str("dns_name") {
		t.Errorf("output serve_url is %v, want http://%s (no certificate)", got, lb.str("dns_name"))
	}
	forwards := false
	for _, l := range d.all("aws_lb_listener") {
		if a := l.block("default_action"); l.str("load_balancer_arn") == lb.str("arn") && a != nil && a["type"] == "forward" && a["target_group_arn"] == tg.str("arn") {
			forwards = true
		}
	}
	if !forwards {
		t.Errorf("no listener of %s forwards to %s", lb.Address, tg.Address)
	}
	// Every path reaches the tasks by the listeners' default action: the
	// trustless gateway's /ipfs/, delegated routing's /routing/v1/ and the
	// IPNI advertisements' /ipni/v1/ad/.
	for _, l := range d.all("aws_lb_listener") {
		if l.str("load_balancer_arn") != lb.str("arn") {
			continue
		}
		for _, rule := range d.all("aws_lb_listener_rule") {
			if rule.str("listener_arn") == l.str("arn") {
				t.Errorf("%s chooses among the paths %s sends to the serve tasks: /ipfs/, /routing/v1/ and /ipni/v1/ad/ must all reach them", rule.Address, l.Address)
			}
		}
	}
	if hc := tg.block("health_check"); hc == nil || hc["path"] != "/healthz" || hc["matcher"] != "200" || hc["port"] != "traffic-port" {
		t.Errorf("%s health_check %v: want /healthz answering 200 on the traffic port", tg.Address, tg.Values["health_check"])
	}
	reg := registration(svc, tg)
	if reg == nil {
		t.Fatalf("%s load_balancer %v: want %s", svc.Address, svc.Values["load_balancer"], tg.str("arn"))
	}
	td, ok := d.byAttr("aws_ecs_task_definition", "arn", svc.str("task_definition"))
	if !ok {
		t.Fatalf("%s runs %q, not in the plan", svc.Address, svc.str("task_definition"))
	}
	var defs []containerDef
	if err := json.Unmarshal([]byte(td.str("container_definitions")), &defs); err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(tg.Values["port"])
	for _, c := range defs {
		if c.Name != reg["container_name"] {
			continue
		}
		env := map[string]string{}
		for _, kv := range c.Environment {
			env[kv.Name] = kv.Value
		}
		if roleOf(c.Command) != awsconfig.RoleServe || !strings.HasSuffix(env["PICKUP_SERVE_ADDR"], ":"+port) || fmt.Sprint(reg["container_port"]) != port {
			t.Errorf("%s: container %s runs %q listening on %q, registered on port %v; the target group sends to %s", svc.Address, c.Name, c.Command, env["PICKUP_SERVE_ADDR"], reg["container_port"], port)
		}
	}
	net := svc.block("network_configuration")
	private := map[string]bool{}
	for _, sn := range d.all("aws_subnet") {
		if strings.Contains(sn.Address, "private") {
			private[sn.str("id")] = true
		}
	}
	for _, sn := range net["subnets"].([]any) {
		if !private[fmt.Sprint(sn)] {
			t.Errorf("%s runs in subnet %v, which is not a private one", svc.Address, sn)
		}
	}
	if net["assign_public_ip"] != false {
		t.Errorf("%s: assign_public_ip %v", svc.Address, net["assign_public_ip"])
	}
	nlb := d.one(t, "aws_lb", "serve.aws_lb.libp2p")
	lbGroups := map[string]bool{}
	for _, g := range append(lb.list("security_groups"), nlb.list("security_groups")...) {
		lbGroups[fmt.Sprint(g)] = true
	}
	for _, g := range net["security_groups"].([]any) {
		for _, in := range d.all("aws_vpc_security_group_ingress_rule") {
			if in.str("security_group_id") != fmt.Sprint(g) {
				continue
			}
			if in.str("cidr_ipv4") != "" || in.str("cidr_ipv6") != "" || !lbGroups[in.str("referenced_security_group_id")] {
				t.Errorf("%s admits %v (cidr %q %q, group %q) into the serve tasks: only the load balancers' groups may", in.Address, in.Values["from_port"], in.str("cidr_ipv4"), in.str("cidr_ipv6"), in.str("referenced_security_group_id"))
			}
		}
	}
	checkServeLibp2p(t, d, svc, nlb, defs)
}

// registration is the load_balancer block of an ECS service that
// registers its tasks with target group tg (nil if none does).
func registration(svc, tg tfResource) map[string]any {
	for _, b := range svc.list("load_balancer") {
		if m, ok := b.(map[string]any); ok && m["target_group_arn"] == tg.str("arn") {
			return m
		}
	}
	return nil
}

// checkServeLibp2p checks the serve peer's libp2p endpoint in an applied
// plan: the network load balancer listens for TCP and UDP on the port the
// serve container's libp2p host listens on (PICKUP_SERVE_LIBP2P_LISTEN,
// TCP and QUIC), forwarding to a target group of the service's tasks on
// that port; the addresses the peer announces (and the outputs give) are
// that load balancer's DNS name on that port; its key is injected from a
// secret of the plan, which its execution role may read.
func checkServeLibp2p(t *testing.T, d *deployment, svc, nlb tfResource, defs []containerDef) {
	t.Helper()
	tg := d.one(t, "aws_lb_target_group", "serve.aws_lb_target_group.libp2p")
	if nlb.str("dns_name") == "" || nlb.Values["internal"] != false || nlb.str("load_balancer_type") != "network" {
		t.Errorf("%s: dns_name %q, internal %v, type %q: want an internet-facing NLB with a DNS name", nlb.Address, nlb.str("dns_name"), nlb.Values["internal"], nlb.str("load_balancer_type"))
	}
	port := fmt.Sprint(tg.Values["port"])
	forwards := false
	for _, l := range d.all("aws_lb_listener") {
		if a := l.block("default_action"); l.str("load_balancer_arn") == nlb.str("arn") && a != nil && a["type"] == "forward" && a["target_group_arn"] == tg.str("arn") {
			forwards = forwards || l.str("protocol") == "TCP_UDP" && fmt.Sprint(l.Values["port"]) == port
		}
	}
	if !forwards || tg.str("protocol") != "TCP_UDP" {
		t.Errorf("no TCP_UDP listener of %s on %s forwards to %s (protocol %q)", nlb.Address, port, tg.Address, tg.str("protocol"))
	}
	reg := registration(svc, tg)
	if reg == nil || fmt.Sprint(reg["container_port"]) != port {
		t.Fatalf("%s load_balancer %v: want %s on port %s", svc.Address, svc.Values["load_balancer"], tg.str("arn"), port)
	}
	for _, c := range defs {
		if c.Name != reg["container_name"] {
			continue
		}
		env := map[string]string{}
		for _, kv := range c.Environment {
			env[kv.Name] = kv.Value
		}
		want := fmt.Sprintf("/ip4/0.0.0.0/tcp/%s,/ip4/0.0.0.0/udp/%s/quic-v1", port, port)
		if env["PICKUP_SERVE_LIBP2P_LISTEN"] != want {
			t.Errorf("%s: PICKUP_SERVE_LIBP2P_LISTEN %q, want %q: the load balancer sends to %s", c.Name, env["PICKUP_SERVE_LIBP2P_LISTEN"], want, port)
		}
		announce := []string{"/dns4/" + nlb.str("dns_name") + "/tcp/" + port, "/dns4/" + nlb.str("dns_name") + "/udp/" + port + "/quic-v1"}
		if env["PICKUP_SERVE_LIBP2P_ANNOUNCE"] != strings.Join(announce, ",") {
			t.Errorf("%s: PICKUP_SERVE_LIBP2P_ANNOUNCE %q, want %q", c.Name, env["PICKUP_SERVE_LIBP2P_ANNOUNCE"], strings.Join(announce, ","))
		}
		if got := fmt.Sprint(d.outputs["serve_libp2p_addrs"]); got != fmt.Sprint(announce) {
			t.Errorf("output serve_libp2p_addrs is %s, want %s", got, announce)
		}
		if env["PICKUP_SERVE_PUBLIC_URL"] != d.outputs["serve_url"] {
			t.Errorf("%s: PICKUP_SERVE_PUBLIC_URL %q, want the serve_url output %v", c.Name, env["PICKUP_SERVE_PUBLIC_URL"], d.outputs["serve_url"])
		}
		var key string
		for _, s := range c.Secrets {
			if s.Name == "PICKUP_SERVE_LIBP2P_KEY" {
				key = s.ValueFrom
			}
		}
		if _, ok := d.byAttr("aws_secretsmanager_secret", "arn", key); !ok || d.outputs["serve_libp2p_key_secret_arn"] != key {
			t.Errorf("%s: PICKUP_SERVE_LIBP2P_KEY from %q: want a secret of the plan, the serve_libp2p_key_secret_arn output (%v)", c.Name, key, d.outputs["serve_libp2p_key_secret_arn"])
		}
	}
}
