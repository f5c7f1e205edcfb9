package terraform

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/awsconfig"
)

// The roles as the plan wires them: the Lambda function, and each
// container of each ECS task definition.

var (
	plansMu sync.Mutex
	plans   = map[string]*deployment{}
)

// planFor returns envs/<env> deployed as terraform/README.md's steps do
// (applyEnv), with extra variables if any, once per test binary.
func planFor(t *testing.T, env string, extra ...string) *deployment {
	t.Helper()
	key := strings.Join(append([]string{env}, extra...), " ")
	plansMu.Lock()
	defer plansMu.Unlock()
	if d, ok := plans[key]; ok {
		return d
	}
	d := applyEnv(t, env, extra...)
	plans[key] = d
	return d
}

// ecsSecret is one entry of a container's `secrets`.
type ecsSecret struct {
	Name      string `json:"name"`
	ValueFrom string `json:"valueFrom"`
}

// containerDef is what the test reads of an ECS container definition.
type containerDef struct {
	Name        string   `json:"name"`
	Image       string   `json:"image"`
	Essential   *bool    `json:"essential"`
	EntryPoint  []string `json:"entryPoint"`
	Command     []string `json:"command"`
	Environment []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"environment"`
	Secrets   []ecsSecret `json:"secrets"`
	DependsOn []struct {
		ContainerName string `json:"containerName"`
		Condition     string `json:"condition"`
	} `json:"dependsOn"`
	HealthCheck *struct {
		Command     []string `json:"command"`
		Interval    int      `json:"interval"`
		Timeout     int      `json:"timeout"`
		Retries     int      `json:"retries"`
		StartPeriod int      `json:"startPeriod"`
	} `json:"healthCheck"`
	PortMappings []struct {
		ContainerPort int `json:"containerPort"`
	} `json:"portMappings"`
}

// wiredRole is one process the plan starts.
type wiredRole struct {
	role  string // the awsconfig role its command runs
	where string // the function, or task family/container
	// family is the task definition's family ("" for the Lambda).
	family    string
	container containerDef
	// env is its environment as wired (the secrets are not in it).
	env              map[string]string
	secrets          []ecsSecret
	roleARN          string // the Lambda's role, or the task role
	executionRoleARN string // the task's execution role
}

// roleOf names the role a container's command runs.
func roleOf(command []string) string {
	if len(command) == 0 {
		return ""
	}
	switch command[0] {
	case "fetcher":
		return awsconfig.RoleFetcher
	case "projector":
		return awsconfig.RoleProjector
	case "gateway":
		return awsconfig.RoleGateway
	case "serve":
		return awsconfig.RoleServe
	case "views":
		if len(command) > 1 && command[1] == "setup" {
			return awsconfig.RoleViewsSetup
		}
	case "events":
		if len(command) > 1 && command[1] == "setup" {
			return awsconfig.RoleEventsSetup
		}
	}
	return awsconfig.RoleAdmin
}

// wiredRoles lists the Lambda and every container of every task
// definition of the plan.
func wiredRoles(t *testing.T, d *deployment) []wiredRole {
	t.Helper()
	var out []wiredRole
	for _, fn := range d.all("aws_lambda_function") {
		env := map[string]string{}
		if e := fn.block("environment"); e != nil {
			if vars, ok := e["variables"].(map[string]any); ok {
				for k, v := range vars {
					env[k], _ = v.(string)
				}
			}
		}
		out = append(out, wiredRole{role: awsconfig.RoleGateway, where: fn.str("function_name"), env: env, roleARN: fn.str("role")})
	}
	for _, td := range d.all("aws_ecs_task_definition") {
		var defs []containerDef
		if err := json.Unmarshal([]byte(td.str("container_definitions")), &defs); err != nil {
			t.Fatalf("%s: container_definitions: %v", td.Address, err)
		}
		for _, c := range defs {
			env := map[string]string{}
			for _, kv := range c.Environment {
				env[kv.Name] = kv.Value
			}
			out = append(out, wiredRole{
				role: roleOf(c.Command), where: fmt.Sprintf("%s/%s", td.str("family"), c.Name), family: td.str("family"),
				container: c, env: env, secrets: c.Secrets,
				roleARN: td.str("task_role_arn"), executionRoleARN: td.str("execution_role_arn"),
			})
		}
	}
	return out
}
