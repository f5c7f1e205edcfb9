package terraform

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// An edit replaces old, which must occur exactly once in file (relative to
// terraform/), with new. With block set, old is the first line of a block
// (`resource "t" "n" {`) and the whole block goes.
type edit struct {
	file, old, new string
	block          bool
}

// A mutation breaks the wiring the way a careless change would; the tests
// of root (a module or an environment, or root#name for its one test file
// tests/name.tftest.hcl) must then fail, and say so in want (matched with
// runs of white space folded, since Terraform wraps its diagnostics).
type mutation struct {
	name  string
	root  string
	edits []edit
	want  string
}

func mutations() []mutation {
	const (
		fetchersMain = "modules/fetchers/main.tf"
		fetchersIAM  = "modules/fetchers/iam.tf"
		fetchersNet  = "modules/fetchers/network.tf"
		viewsMain    = "modules/views/main.tf"
		pickupMain   = "modules/pickup/main.tf"
		obsMain      = "modules/observability/main.tf"
		serveMain    = "modules/serve/main.tf"
		serveIAM     = "modules/serve/iam.tf"
		serveNet     = "modules/serve/network.tf"
	)
	one := func(file, old, new string) []edit { return []edit{{file: file, old: old, new: new}} }
	return []mutation{
		// Autoscaling.
		{"scaling divides by a task count from the wrong namespace", "modules/fetchers#scaling",
			one(fetchersMain, `namespace   = "ECS/ContainerInsights"`, `namespace   = "AWS/ECS"`),
			"autoscaling must divide by Container Insights' RunningTaskCount"},
		{"Container Insights off while scaling reads its metrics", "modules/fetchers#scaling",
			one(fetchersMain, `value = "enabled"`, `value = "disabled"`),
			"Container Insights must be on"},
		{"ignore_changes = [desired_count] removed", "modules/fetchers#scaling",
			one(fetchersMain, `ignore_changes = [desired_count]`, `ignore_changes = []`),
			"a new plan must leave the fetchers' desired count to autoscaling"},
		{"scaling tracks the backlog alone", "modules/fetchers#scaling",
			one(fetchersMain, `expression  = "backlog / tasks"`, `expression  = "backlog"`),
			"autoscaling must track the backlog per running task"},

		// The views' network and logins.
		{"RDS Proxy to database rule admits the wrong group", "modules/views",
			one(viewsMain, `referenced_security_group_id = aws_security_group.proxy.id`, `referenced_security_group_id = aws_security_group.db.id`),
			"the cluster's security group must admit PostgreSQL from the proxy's"},
		{"RDS Proxy to database rule removed", "modules/views",
			[]edit{{file: viewsMain, old: `resource "aws_vpc_security_group_ingress_rule" "db_from_proxy" {`, block: true}},
			"aws_vpc_security_group_ingress_rule.db_from_proxy"},
		{"RDS Proxy egress to the database removed", "modules/views",
			[]edit{{file: viewsMain, old: `resource "aws_vpc_security_group_egress_rule" "proxy_to_db" {`, block: true}},
			"aws_vpc_security_group_egress_rule.proxy_to_db"},
		{"RDS Proxy logs in as the master user", "modules/views",
			one(viewsMain, `secret_arn                = aws_secretsmanager_secret.app.arn`, `secret_arn                = local.master_secret_arn`),
			"the proxy must log in as the application role"},
		{"the tasks cannot reach the cluster", "modules/pickup",
			one(pickupMain, `direct_client_security_group_ids = [module.fetchers.task_security_group_id, module.serve.security_group_id]`, `direct_client_security_group_ids = [module.serve.security_group_id]`),
			"the cluster must admit the tasks"},
		{"the gateway cannot reach the proxy", "modules/pickup",
			one(pickupMain, `proxy_client_security_group_ids  = [module.gateway.security_group_id]`, `proxy_client_security_group_ids  = []`),
			"the proxy the gateway"},
		{"gateway's PICKUP_VIEWS_SECRET_ARN is the master secret", "modules/pickup",
			one(pickupMain, `views_secret_arn     = module.views.app_secret_arn`, `views_secret_arn     = module.views.master_secret_arn`),
			"never with the master secret"},
		{"tasks' PICKUP_VIEWS_SECRET_ARN is the master secret", "modules/pickup",
			one(pickupMain, `views_secret_arn       = module.views.app_secret_arn`, `views_secret_arn       = module.views.master_secret_arn`),
			"views_admin_secret_arn must be the master secret, not the application role's"},
		{"a task role reads the master secret", "modules/fetchers#iam",
			one(fetchersIAM, `Resource = [var.views_secret_arn]`, `Resource = [var.views_secret_arn, var.views_admin_secret_arn]`),
			"no task role may read the master secret"},
		{"views-setup connects through the proxy", "modules/pickup",
			one(pickupMain, `views_setup_url        = module.views.setup_url`, `views_setup_url        = module.views.proxy_url`),
			"views_setup_url must be a postgres:// URL of the cluster's writer"},
		{"projector does not wait for views-setup to succeed", "modules/fetchers#tasks",
			one(fetchersMain, `containerName = "views-setup", condition = "SUCCESS"`, `containerName = "views-setup", condition = "START"`),
			"the projector must start only once views-setup has succeeded"},

		// The event log on Aurora PostgreSQL.
		{"prod's event log without deletion protection", "envs/prod",
			one(pickupMain, `deletion_protection            = !var.disposable`, `deletion_protection            = false`),
			"prod's event log must be protected from deletion"},
		{"the event log's backups off", "modules/eventlog",
			one("modules/eventlog/main.tf", `backup_retention_period         = var.backup_retention_days`, `backup_retention_period         = 0`),
			"the event log's backups (point-in-time recovery) must be kept"},
		{"prod's event log backups kept as long as dev's", "envs/prod",
			one("envs/prod/main.tf", `eventlog_backup_retention_days = 35`, `eventlog_backup_retention_days = 7`),
			"with the longest point-in-time recovery RDS keeps"},
		{"subscribers reach the event log through the views' proxy", "modules/pickup",
			one(pickupMain, `eventlog_url              = local.eventlog.url`, `eventlog_url              = module.views.proxy_url`),
			"the subscribers (fetchers, projector) must reach the event log on its cluster's writer directly"},
		{"the event log's app role given the master secret", "modules/pickup",
			one(pickupMain, `secret_arn        = module.eventlog[0].app_secret_arn`, `secret_arn        = module.eventlog[0].master_secret_arn`),
			"must be the master secret, not the app role's"},
		{"a task role reads the event log's master secret", "modules/pickup",
			one(fetchersIAM, `Resource = [var.eventlog_secret_arn]`, `Resource = [var.eventlog_secret_arn, var.eventlog_admin_secret_arn]`),
			"every task role must read the event log's app secret, and none its master secret"},
		{"task roles cannot read the event log's app secret", "modules/pickup",
			one(fetchersIAM, `Resource = [var.eventlog_secret_arn]`, `Resource = []`),
			"every task role must read the event log's app secret"},
		{"views-setup does not wait for events-setup", "modules/pickup",
			one(fetchersMain, `depends_on   = local.after_events_setup`, `depends_on   = []`),
			"views-setup and the projector only once it has succeeded"},
		{"the event log's cluster admits no gateway", "modules/pickup",
			one(pickupMain, `client_security_group_ids      = [module.fetchers.task_security_group_id, module.gateway.security_group_id, module.serve.security_group_id]`, `client_security_group_ids      = [module.fetchers.task_security_group_id, module.serve.security_group_id]`),
			"the event log's cluster must admit the tasks, the gateway"},

		// Protection of data.
		{"prod disposable", "envs/prod",
			one("envs/prod/main.tf", `disposable                   = false`, `disposable                   = true`),
			"This environment refuses disposable = true"},
		{"prod disposable, its refusal removed too", "envs/prod",
			[]edit{
				{file: "envs/prod/main.tf", old: `disposable                   = false`, new: `disposable                   = true`},
				{file: "envs/prod/main.tf", old: `allow_disposable             = false`, new: `allow_disposable             = true`},
			},
			"prod is never disposable"},
		{"ECR repository kept by a disposable deployment", "envs/dev",
			one(pickupMain, `force_delete           = var.disposable`, `force_delete           = false`),
			"dev is disposable"},

		// Dialable fetchers and delegates.
		{"fetchers' libp2p QUIC ingress removed", "modules/fetchers#network",
			one(fetchersNet, `udp_ipv4 = { protocol = "udp", cidr_ipv4 = "0.0.0.0/0", cidr_ipv6 = null }`, ``),
			"the libp2p security group must admit TCP and UDP (QUIC) 4001 from anywhere"},
		{"fetchers' libp2p ingress removed", "modules/fetchers#network",
			[]edit{{file: fetchersNet, old: `resource "aws_vpc_security_group_ingress_rule" "libp2p" {`, block: true}},
			"aws_vpc_security_group_ingress_rule.libp2p"},
		{"fetchers outside the libp2p security group", "modules/fetchers#network",
			one(fetchersMain, `security_groups  = [aws_security_group.tasks.id, aws_security_group.libp2p.id]`, `security_groups  = [aws_security_group.tasks.id]`),
			"the fetchers must be in the libp2p security group"},
		{"public fetchers without public addresses", "modules/fetchers#network",
			one(fetchersMain, `assign_public_ip = var.fetchers_public`, `assign_public_ip = false`),
			"public fetchers must run in the public subnets, each task with its own public address"},
		{"public fetchers do not discover their address", "modules/fetchers#tasks",
			one(fetchersMain, `PICKUP_LIBP2P_PUBLIC_IP = "ecs"`, `PICKUP_LIBP2P_PUBLIC_IP_UNUSED = "ecs"`),
			"the fetcher's environment must carry"},
		{"public fetchers cannot read their public address", "modules/fetchers#network",
			one(fetchersIAM, `Action   = ["ec2:DescribeNetworkInterfaces"]`, `Action   = ["ec2:DescribeInstances"]`),
			"PICKUP_LIBP2P_PUBLIC_IP=ecs needs ec2:DescribeNetworkInterfaces"},
		{"public subnets without the S3 gateway endpoint", "modules/network",
			one("modules/network/main.tf", `route_table_ids = concat(aws_route_table.private[*].id, [aws_route_table.public.id])`, `route_table_ids = aws_route_table.private[*].id`),
			"the S3 endpoint must serve every private route table and the public one"},
		{"a private-fetcher deployment with no delegates", "envs/dev",
			one("envs/dev/main.tf", `fetchers_public                     = var.fetchers_public`, `fetchers_public                     = false`),
			"Private fetchers (fetchers_public = false) cannot be dialed by clients"},
		{"private fetchers without delegates no longer refused", "modules/pickup",
			one("modules/pickup/variables.tf", `condition     = var.fetchers_public || length(var.delegates) > 0`, `condition     = var.fetchers_public || length(var.delegates) >= 0`),
			"var.delegates, was expected to report an error"},
		{"PICKUP_DELEGATES set, empty, without static delegates", "modules/gateway",
			one("modules/gateway/main.tf", `}, length(var.delegates) > 0 ? {`, `}, true ? {`),
			"PICKUP_DELEGATES must be unset"},

		// Secrets, health, IAM against the code.
		{"health check removed", "modules/fetchers#tasks",
			one(fetchersMain, `c.health != null ? { healthCheck = c.health } : {},`, `{},`),
			"health check must run `pickup health --live`"},
		{"health check asks another binary", "modules/fetchers#tasks",
			one(fetchersMain, `binary = "/ko-app/pickup"`, `binary = "/usr/bin/pickup"`),
			"health check must run `pickup health --live`"},
		{"health checks ask readiness", "modules/fetchers#tasks",
			one(fetchersMain, `"health", "--live"]`, `"health"]`),
			"liveness"},
		{"no PICKUP_WEBHOOK_KEY for the projector", "modules/fetchers#tasks",
			one(fetchersMain, `PICKUP_WEBHOOK_KEY = aws_secretsmanager_secret.webhook_key.arn`, ``),
			"the projector must get the event log and the webhook key"},
		{"no libp2p seed for the fetchers", "modules/fetchers#tasks",
			one(fetchersMain, `PICKUP_LIBP2P_SEED = aws_secretsmanager_secret.libp2p_seed.arn`, ``),
			"the event log and the libp2p seed must come from Secrets Manager"},
		{"fetcher may not list the staging bucket's uploads", "modules/fetchers#iam",
			one(fetchersIAM, "Action   = [\"s3:ListBucket\", \"s3:ListBucketMultipartUploads\"]\n          Resource = [var.staging_bucket_arn]", "Action   = [\"s3:ListBucket\"]\n          Resource = [var.staging_bucket_arn]"),
			"the fetcher's role must allow every S3 call the fetcher makes"},
		{"fetcher may not abort carpark uploads", "modules/fetchers#iam",
			one(fetchersIAM, "\"s3:DeleteObject\",\n            \"s3:AbortMultipartUpload\",\n            \"s3:ListMultipartUploadParts\",", "\"s3:DeleteObject\",\n            \"s3:ListMultipartUploadParts\","),
			"the fetcher's role must allow every S3 call the fetcher makes"},

		{"views-setup essential", "modules/fetchers#tasks",
			one(fetchersMain, "name         = \"views-setup\"\n          command      = [\"views\", \"setup\"]\n          essential    = false", "name         = \"views-setup\"\n          command      = [\"views\", \"setup\"]\n          essential    = true"),
			"views-setup must run `pickup views setup` and may end"},
		{"apply does not wait for the projector before the fetchers", "modules/fetchers#tasks",
			one(fetchersMain, `wait_for_steady_state = true`, `wait_for_steady_state = false`),
			"terraform apply must wait for the projector"},
		{"two projectors during a deployment", "modules/fetchers#tasks",
			one(fetchersMain, `deployment_maximum_percent         = 100`, `deployment_maximum_percent         = 200`),
			"exactly one projector may run, even during a deployment"},
		{"fetchers listen on TCP only", "modules/fetchers#tasks",
			one(fetchersMain, `,/ip4/0.0.0.0/udp/${local.libp2p_port}/quic-v1"`, `"`),
			"the fetcher's environment must carry"},
		{"prod with more fetchers than identity slots", "envs/prod",
			one("envs/prod/variables.tf", "type        = number\n  default     = 20\n", "type        = number\n  default     = 50\n"),
			"fetcher_max_count must be at most 20"},

		// The serving role (pickup serve behind its load balancer).
		{"serve's task role may write CARs", "modules/serve",
			one(serveIAM, `Action   = ["s3:GetObject"]`, `Action   = ["s3:GetObject", "s3:PutObject"]`),
			"the serve role is read-only: no S3 write"},
		{"serve's task role reads the staging bucket", "modules/serve",
			one(serveIAM, `Resource = ["${var.carpark_bucket_arn}/*"]`, `Resource = ["${var.carpark_bucket_arn}/*", "arn:aws:s3:::pickup-test-staging/*"]`),
			"the serve role must read the carpark and the two app roles' secrets, and nothing else"},
		{"serve's target group checks another path", "modules/serve",
			one(serveMain, `path                = "/healthz"`, `path                = "/"`),
			"check /healthz there for 200"},
		{"serve tasks open to the world on 8080", "modules/serve",
			one(serveNet, `referenced_security_group_id = aws_security_group.alb.id`, `cidr_ipv4                    = "0.0.0.0/0"`),
			"the serve tasks must admit 8080 from the load balancer's security group only, never from the world"},
		{"serve tasks with public addresses", "modules/serve",
			one(serveMain, `assign_public_ip = false`, `assign_public_ip = true`),
			"the serve tasks must run in the private subnets, without public addresses"},
		{"serve's HTTP does not redirect to HTTPS", "modules/serve",
			one(serveMain, `type             = local.https ? "redirect" : "forward"`, `type             = "forward"`),
			"with a certificate HTTP must redirect to HTTPS"},
		{"serve scales on the load balancer's whole request count", "modules/serve",
			one(serveMain, `predefined_metric_type = "ALBRequestCountPerTarget"`, `predefined_metric_type = "ALBRequestCount"`),
			"the serve service must track requests per target"},
		{"no alarm on serve's unhealthy targets", "modules/serve",
			one("modules/serve/alarms.tf", `metric      = "UnHealthyHostCount"`, `metric      = "HealthyHostCount"`),
			"unhealthy targets must raise alarms"},
		{"the views' cluster does not admit the serve tasks", "modules/pickup",
			one(pickupMain, `direct_client_security_group_ids = [module.fetchers.task_security_group_id, module.serve.security_group_id]`, `direct_client_security_group_ids = [module.fetchers.task_security_group_id]`),
			"the cluster must admit the tasks (fetchers, projector, admin, serve)"},
		{"the event log's cluster does not admit the serve tasks", "modules/pickup",
			one(pickupMain, `client_security_group_ids      = [module.fetchers.task_security_group_id, module.gateway.security_group_id, module.serve.security_group_id]`, `client_security_group_ids      = [module.fetchers.task_security_group_id, module.gateway.security_group_id]`),
			"the event log's cluster must admit the tasks, the gateway and the serve tasks"},
		{"serve logs in to the views with the master secret", "modules/pickup",
			one(pickupMain, `views_secret_arn           = module.views.app_secret_arn`, `views_secret_arn           = module.views.master_secret_arn`),
			"with the app roles' secrets"},
		{"serve starts before the projector", "modules/pickup",
			one(pickupMain, `start_after        = [module.fetchers.projector_service_name]`, `start_after        = []`),
			"the serve service must start after the projector service"},

		// The serve peer's libp2p endpoint and key.
		{"serve's network load balancer takes TCP only (no QUIC)", "modules/serve",
			one("modules/serve/libp2p.tf", `protocol          = "TCP_UDP"`, `protocol          = "TCP"`),
			"the network load balancer must take libp2p's TCP and QUIC (UDP) on 4002"},
		{"serve tasks open to the world on libp2p's 4002", "modules/serve",
			one(serveNet, `referenced_security_group_id = aws_security_group.nlb.id`, `cidr_ipv4                    = "0.0.0.0/0"`),
			"libp2p's 4002 (TCP and UDP) from the NLB's, never from the world directly"},
		{"serve's task role may read the peer key", "modules/serve",
			one(serveIAM, `Resource = [var.views_secret_arn]`, `Resource = [var.views_secret_arn, aws_secretsmanager_secret.libp2p_key.arn]`),
			"the execution role must read the peer key's secret (ECS injects it), and the task role must not"},
		{"serve announces its listen addresses, not the load balancer's", "modules/serve",
			one(serveMain, `PICKUP_SERVE_LIBP2P_ANNOUNCE = join(",", local.libp2p_announce)`, `PICKUP_SERVE_LIBP2P_ANNOUNCE = join(",", local.libp2p_listen)`),
			"the serve peer must announce TCP and QUIC on the network load balancer's name"},

		// Alarms.
		{"failed tasks rule matches running tasks", "modules/observability",
			one(obsMain, `lastStatus = ["STOPPED"]`, `lastStatus = ["RUNNING"]`),
			"every service task of the cluster that stops on a failure must be caught"},
		{"tasks-below-desired alarm reads the wrong namespace", "modules/observability",
			one(obsMain, `namespace   = "ECS/ContainerInsights"`, `namespace   = "AWS/ECS"`),
			"fewer running tasks than desired, for each service, must raise an alarm"},
		{"EventBridge may not publish to the alarm topic", "modules/pickup",
			one(pickupMain, `Principal = { Service = ["cloudwatch.amazonaws.com", "events.amazonaws.com"] }`, `Principal = { Service = ["cloudwatch.amazonaws.com"] }`),
			"CloudWatch alarms and EventBridge (failed tasks) must be allowed to publish"},

		// CAR uploads: the gateway puts them, the fetchers read them.
		{"the gateway may read CAR uploads", "modules/gateway",
			one("modules/gateway/main.tf", `Action   = ["s3:PutObject", "s3:DeleteObject"]`, `Action   = ["s3:PutObject", "s3:DeleteObject", "s3:GetObject"]`),
			"the gateway may put and delete CAR uploads under the uploads prefix and nothing else of S3"},
		{"the gateway's uploads statement reaches the whole bucket", "modules/gateway",
			one("modules/gateway/main.tf", `s3:::${var.uploads_bucket}/${var.uploads_prefix}*"]`, `s3:::${var.uploads_bucket}/*"]`),
			"the gateway may put and delete CAR uploads under the uploads prefix and nothing else of S3"},
		{"the fetchers cannot delete CAR uploads", "modules/fetchers#iam",
			one(fetchersIAM, `Action   = ["s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]`, `Action   = ["s3:GetObject", "s3:AbortMultipartUpload"]`),
			"the fetcher's role must read, delete and sweep CAR uploads under the uploads prefix only"},
		{"the gateway is given no uploads area", "modules/pickup",
			one(pickupMain, `uploads_bucket       = module.storage.uploads_bucket`, `uploads_bucket       = null`),
			"the gateway and the fetchers must share one uploads area"},
		{"the staging lifecycle rule leaves the uploads out", "modules/storage",
			one("modules/storage/main.tf", "    filter {}\n\n    expiration {\n      days = var.staging_expiration_days", "    filter {\n      prefix = var.staging_prefix\n    }\n\n    expiration {\n      days = var.staging_expiration_days"),
			"a staging lifecycle rule must take in the uploads prefix"},
		{"the uploads prefix overlaps staging's", "modules/storage",
			one("modules/storage/main.tf", `!startswith(var.uploads_prefix, var.staging_prefix) && !startswith(var.staging_prefix, var.uploads_prefix)`, `var.uploads_prefix != ""`),
			"uploads_prefix_overlapping_staging"},
	}
}

// TestMutations breaks the wiring in each of the ways above, in a copy of
// the deployment, and requires the tests of the module or environment
// concerned to fail on it (and to pass on the unbroken copy): a check that
// cannot fail guards nothing.
func TestMutations(t *testing.T) {
	terraformBinary(t)
	if testing.Short() {
		t.Skip("-short: each mutation runs a terraform test")
	}
	plugins := stubPlugins(t)
	env := tfEnv(t)

	// One group per root, or per test file where a mutation names one: the
	// groups run in parallel, each in its own copy.
	byRoot := map[string][]mutation{}
	for _, m := range mutations() {
		byRoot[m.root] = append(byRoot[m.root], m)
	}
	var names []string
	for r := range byRoot {
		names = append(names, r)
	}
	sort.Strings(names)
	start := time.Now()
	t.Cleanup(func() {
		t.Logf("%d mutations in %d groups: %s", len(mutations()), len(names), time.Since(start).Round(time.Second))
	})

	for _, group := range names {
		t.Run(strings.NewReplacer("/", "_", "#", "_").Replace(group), func(t *testing.T) {
			t.Parallel()
			// One copy per group, initialised once: each mutation is written
			// into it, tested, and undone.
			r, file, filtered := strings.Cut(group, "#")
			test := []string{"test"}
			if filtered {
				test = append(test, "-filter=tests/"+file+".tftest.hcl")
			}
			dir := copyTree(t)
			root := filepath.Join(dir, r)
			args := []string{"init", "-backend=false", "-input=false", "-plugin-dir=" + plugins}
			if strings.HasPrefix(r, "envs/") {
				args = append(args, "-lockfile=readonly")
			}
			if out, err := tf(t, env, root, args...); err != nil {
				t.Fatalf("terraform init: %v\n%s", err, out)
			}
			if out, err := tf(t, env, root, test...); err != nil {
				t.Fatalf("the unbroken copy must pass: %v\n%s", err, out)
			}
			for _, m := range byRoot[group] {
				t.Run(m.name, func(t *testing.T) {
					undo := m.apply(t, dir)
					defer undo()
					began := time.Now()
					out, err := tf(t, env, root, test...)
					if err == nil {
						t.Fatalf("terraform test of %s passed with the wiring broken:\n%s", r, out)
					}
					if !strings.Contains(fold(out), fold(m.want)) {
						t.Fatalf("terraform test of %s failed, but not on %q:\n%s", r, m.want, out)
					}
					t.Logf("caught in %s", time.Since(began).Round(100*time.Millisecond))
				})
			}
		})
	}
}

var spaceRe = regexp.MustCompile(`\s+`)

func fold(s string) string { return spaceRe.ReplaceAllString(s, " ") }

// apply writes m's edits into the copy at dir and returns what restores
// the files.
func (m mutation) apply(t *testing.T, dir string) (undo func()) {
	t.Helper()
	saved := map[string][]byte{}
	undo = func() {
		for p, b := range saved {
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	for _, e := range m.edits {
		p := filepath.Join(dir, e.file)
		b, err := os.ReadFile(p)
		if err != nil {
			undo()
			t.Fatal(err)
		}
		if _, ok := saved[p]; !ok {
			saved[p] = b
		}
		src := string(b)
		if n := strings.Count(src, e.old); n != 1 {
			undo()
			t.Fatalf("%s holds %q %d times, want once: the mutation no longer applies", e.file, e.old, n)
		}
		if e.block {
			src, err = removeBlock(src, e.old)
			if err != nil {
				undo()
				t.Fatalf("%s: %v", e.file, err)
			}
		} else {
			src = strings.Replace(src, e.old, e.new, 1)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			undo()
			t.Fatal(err)
		}
	}
	return undo
}

// removeBlock removes the top-level block whose first line is header, up to
// its closing brace at the start of a line.
func removeBlock(src, header string) (string, error) {
	i := strings.Index(src, header)
	end := strings.Index(src[i:], "\n}\n")
	if end < 0 {
		return "", os.ErrNotExist
	}
	return src[:i] + src[i+end+len("\n}\n"):], nil
}

// TestReadmeTargets checks every `-target=` address of README.md's steps
// against the environments' configuration: module calls followed through
// their sources to a resource block. An address that names nothing makes
// Terraform plan "No changes" and the step silently does nothing (the
// README named module.fetchers.aws_ecr_repository.this inside envs/dev,
// where the repository is module.pickup.module.fetchers's).
func TestReadmeTargets(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "terraform")
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	targets := regexp.MustCompile(`-target=([A-Za-z0-9_.\[\]"-]+)`).FindAllStringSubmatch(string(readme), -1)
	if len(targets) == 0 {
		t.Fatal("README.md's steps name no -target: the repository to push to must be created first")
	}
	for _, env := range []string{"envs/dev", "envs/prod"} {
		for _, m := range targets {
			if err := resolveAddress(filepath.Join(dir, env), m[1]); err != nil {
				t.Errorf("README.md's -target=%s in %s: %v", m[1], env, err)
			}
		}
	}
}

// resolveAddress follows a resource address (module.a.module.b.type.name)
// from the root module in dir.
func resolveAddress(dir, addr string) error {
	parts := strings.Split(addr, ".")
	for len(parts) >= 2 && parts[0] == "module" {
		src, err := tfSources(dir)
		if err != nil {
			return err
		}
		block := regexp.MustCompile(`(?ms)^module "` + regexp.QuoteMeta(parts[1]) + `" \{.*?^\s*source\s*=\s*"([^"]+)"`).FindStringSubmatch(src)
		if block == nil {
			return fmt.Errorf("no module %q (with a source) in %s", parts[1], dir)
		}
		dir = filepath.Join(dir, block[1])
		parts = parts[2:]
	}
	if len(parts) != 2 {
		return fmt.Errorf("%q is not a resource address", addr)
	}
	src, err := tfSources(dir)
	if err != nil {
		return err
	}
	if !strings.Contains(src, `resource "`+parts[0]+`" "`+parts[1]+`" {`) {
		return fmt.Errorf("no resource %s.%s in %s", parts[0], parts[1], dir)
	}
	return nil
}

// tfSources is the text of every .tf file of a module.
func tfSources(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no .tf files in %s", dir)
	}
	var b strings.Builder
	for _, f := range files {
		s, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		b.Write(s)
		b.WriteByte('\n')
	}
	return b.String(), nil
}
