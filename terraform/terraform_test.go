package terraform

import (
	"archive/zip"
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// terraformBinary finds terraform on PATH: without it the checks skip, and
// in CI they fail rather than pass silently.
func terraformBinary(t *testing.T) string {
	t.Helper()
	return need(t, "terraform", "install Terraform 1.11 or later to check the deployment")
}

// tfEnv is the environment terraform runs in: offline, quiet, with no
// configuration or AWS credentials of the machine's.
func tfEnv(t *testing.T) []string {
	cli := filepath.Join(t.TempDir(), "terraformrc")
	if err := os.WriteFile(cli, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TF_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0", "TF_CLI_CONFIG_FILE="+cli,
		"AWSSTUB_ONLY="+strings.Join(usedTypes(t), ","))
}

var usedRe = regexp.MustCompile(`(?m)^\s*(resource|data|mock_resource|mock_data) "(aws_\w+)"`)

// usedTypes lists the AWS resource types and data sources the deployment and
// its tests name, for the stub to serve only those (see command awsstub).
func usedTypes(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(repoRoot(t), "terraform"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !(strings.HasSuffix(p, ".tf") || strings.HasSuffix(p, ".tftest.hcl")) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range usedRe.FindAllStringSubmatch(string(b), -1) {
			if m[1] == "data" || m[1] == "mock_data" {
				seen["data."+m[2]] = true
			} else {
				seen[m[2]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// tf runs terraform in dir and returns its combined output.
func tf(t *testing.T, env []string, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, terraformBinary(t), append(args, "-no-color")...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// copyTree copies the deployment (terraform/, without Go code, Terraform's
// working files or state) into a fresh directory, with a stand-in Lambda
// package at bin/lambda.zip where the environments look for the one `make
// lambda` builds. It returns the copy's terraform/.
func copyTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(repoRoot(t), "terraform")
	dst := filepath.Join(t.TempDir(), "terraform")
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		name := e.Name()
		if e.IsDir() {
			if name == ".terraform" || rel == "internal" || rel == "cmd" || name == "testdata" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		switch {
		case strings.HasSuffix(name, ".go"),
			strings.Contains(name, ".tfstate"),
			name == "terraform.tfvars",
			// Only the environments' lock files are the project's.
			name == ".terraform.lock.hcl" && !strings.HasPrefix(rel, "envs"+string(filepath.Separator)):
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("bootstrap")
	if err == nil {
		_, err = w.Write([]byte("#!/bin/sh\n# stand-in for the pickup binary\n"))
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(filepath.Dir(dst), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "lambda.zip"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// roots lists the modules and environments, relative to terraform/.
func roots(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"modules/*", "envs/*"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				out = append(out, filepath.ToSlash(rel))
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no modules or environments under %s", dir)
	}
	return out
}

func TestFormat(t *testing.T) {
	terraformBinary(t)
	dir := copyTree(t)
	out, err := tf(t, tfEnv(t), dir, "fmt", "-check", "-recursive", "-diff")
	if err != nil {
		t.Fatalf("terraform fmt -check -recursive: files need `terraform fmt`:\n%s", out)
	}
}

var (
	blockRe       = regexp.MustCompile(`(?m)^(variable|output) "([^"]+)" \{`)
	descriptionRe = regexp.MustCompile(`(?m)^  description\s*=\s*"[^"]+`)
	typeRe        = regexp.MustCompile(`(?m)^  type\s*=`)
)

// TestLayout checks what HashiCorp's style guide asks of every module, and
// that environments pin the AWS provider and commit their lock file.
func TestLayout(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "terraform")
	for _, r := range roots(t, dir) {
		t.Run(r, func(t *testing.T) {
			for _, f := range []string{"main.tf", "variables.tf", "outputs.tf", "versions.tf"} {
				if _, err := os.Stat(filepath.Join(dir, r, f)); err != nil {
					t.Errorf("missing %s", f)
				}
			}
			if tests, _ := filepath.Glob(filepath.Join(dir, r, "tests", "*.tftest.hcl")); len(tests) == 0 {
				t.Errorf("no tests/*.tftest.hcl")
			}
			checkBlocks(t, filepath.Join(dir, r, "variables.tf"), "variable", true)
			checkBlocks(t, filepath.Join(dir, r, "outputs.tf"), "output", false)
			versions, _ := os.ReadFile(filepath.Join(dir, r, "versions.tf"))
			if !regexp.MustCompile(`source\s*=\s*"hashicorp/aws"\s+version\s*=\s*"~> 6.0"`).Match(versions) {
				t.Errorf("versions.tf must require hashicorp/aws ~> 6.0")
			}
			if !strings.HasPrefix(r, "envs/") {
				return
			}
			lock, err := os.ReadFile(filepath.Join(dir, r, ".terraform.lock.hcl"))
			if err != nil {
				t.Fatalf("environments commit their lock file: %v", err)
			}
			want := regexp.MustCompile(`provider "registry.terraform.io/hashicorp/aws" \{\s+version\s+= "` + regexp.QuoteMeta(awsVersion) + `"\s+constraints = "~> 6.0"`)
			if !want.Match(lock) {
				t.Errorf(".terraform.lock.hcl must select hashicorp/aws %s for ~> 6.0:\n%s", awsVersion, lock)
			}
		})
	}
}

// checkBlocks checks that every variable (or output) of a file is described
// and, for variables, typed.
func checkBlocks(t *testing.T, path, kind string, typed bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return // reported as missing
	}
	src := string(b)
	locs := blockRe.FindAllStringSubmatchIndex(src, -1)
	for i, loc := range locs {
		end := len(src)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		body, name := src[loc[1]:end], src[loc[4]:loc[5]]
		if src[loc[2]:loc[3]] != kind {
			t.Errorf("%s: %s %q belongs in another file", filepath.Base(path), src[loc[2]:loc[3]], name)
			continue
		}
		if !descriptionRe.MatchString(body) {
			t.Errorf("%s %q has no description", kind, name)
		}
		if typed && !typeRe.MatchString(body) {
			t.Errorf("%s %q has no type", kind, name)
		}
	}
}

// TestModules runs terraform init, validate and test in every module and
// environment, against the schema-only AWS provider.
func TestModules(t *testing.T) {
	terraformBinary(t)
	plugins := stubPlugins(t)
	dir := copyTree(t)
	env := tfEnv(t)
	for _, r := range roots(t, dir) {
		t.Run(r, func(t *testing.T) {
			t.Parallel()
			root := filepath.Join(dir, r)
			args := []string{"init", "-backend=false", "-input=false", "-plugin-dir=" + plugins}
			if strings.HasPrefix(r, "envs/") {
				// An environment's committed lock file must select the
				// provider as it is, never be rewritten.
				args = append(args, "-lockfile=readonly")
			}
			out, err := tf(t, env, root, args...)
			if err != nil {
				t.Fatalf("terraform init: %v\n%s", err, out)
			}
			if strings.HasPrefix(r, "envs/") && !strings.Contains(out, "Reusing previous version of hashicorp/aws from the dependency lock file") {
				t.Errorf("terraform init did not take the provider's version from the lock file:\n%s", out)
			}
			if out, err := tf(t, env, root, "validate"); err != nil {
				t.Fatalf("terraform validate: %v\n%s", err, out)
			}
			out, err = tf(t, env, root, "test")
			if err != nil {
				t.Fatalf("terraform test: %v\n%s", err, out)
			}
			t.Log(lastLine(out))
		})
	}
}

// TestStubRefusesRealWork checks that the stub provider stops any plan that
// is not mocked: it can never reach an AWS account.
func TestStubRefusesRealWork(t *testing.T) {
	terraformBinary(t)
	plugins := stubPlugins(t)
	root := filepath.Join(copyTree(t), "envs", "dev")
	env := append(tfEnv(t), "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=example", "AWS_REGION=us-east-1")
	if out, err := tf(t, env, root, "init", "-backend=false", "-input=false", "-plugin-dir="+plugins, "-lockfile=readonly"); err != nil {
		t.Fatalf("terraform init: %v\n%s", err, out)
	}
	out, err := tf(t, env, root, "plan", "-input=false", "-var", "image_tag=v0")
	if err == nil {
		t.Fatalf("terraform plan succeeded against the stub:\n%s", out)
	}
	if !strings.Contains(out, "schema-only provider stub") {
		t.Fatalf("terraform plan failed, but not on the stub's refusal:\n%s", out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
