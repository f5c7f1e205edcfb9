package cdkschema

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pack builds an npm-style package from files (path inside package/lib ->
// content), in the order given.
func pack(t *testing.T, files [][2]string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "package/lib/" + f[0], Mode: 0o644, Size: int64(len(f[1]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

const providerJS = `class AwsProvider extends cdktn.TerraformProvider {
    static tfResourceType = "aws";
    constructor() {
        super(scope, id, { terraformGeneratorMetadata: { providerName: 'aws', providerVersion: '6.66.0', providerVersionConstraint: '~> 6.0' } });
    }
    // alias - computed: false, optional: true, required: false
    _alias;
    get alias() {
        return this._alias;
    }
    // region - computed: false, optional: true, required: false
    _region;
    get region() {
        return this._region;
    }
    // default_tags - computed: false, optional: true, required: false
    _defaultTags;
    get defaultTags() {
        return this._defaultTags;
    }
    synthesizeHclAttributes() {
        const attrs = {
            alias: {
                value: cdktn.stringToHclTerraform(this._alias),
                isBlock: false,
                type: "simple",
                storageClassType: "string",
            },
            region: {
                value: cdktn.stringToHclTerraform(this._region),
                isBlock: false,
                type: "simple",
                storageClassType: "string",
            },
            default_tags: {
                value: cdktn.listMapperHcl(awsProviderDefaultTagsToHclTerraform, true)(this._defaultTags),
                isBlock: true,
                type: "list",
                storageClassType: "AwsProviderDefaultTagsList",
            },
        };
        return attrs;
    }
}
function awsProviderDefaultTagsToHclTerraform(struct) {
    const attrs = {
        tags: {
            value: cdktn.hashMapperHcl(cdktn.stringToHclTerraform)(struct.tags),
            isBlock: false,
            type: "map",
            storageClassType: "stringMap",
        },
    };
    return attrs;
}
`

func example(t *testing.T) *ProviderSchema {
	t.Helper()
	thing, err := os.ReadFile(filepath.Join("testdata", "example-thing.js"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(thing)
	// A big module, split the way cdktn splits them, and packed apart.
	cut := strings.Index(src, "class ExampleThingSecretOutputReference")
	structs := src[:cut]
	main := strings.ReplaceAll(src[cut:], "new ExampleThingRuleOutputReference(", "new index_1.ExampleThingRuleOutputReference(")
	main = `const index_1 = require("./index-structs/index");` + "\n" + strings.ReplaceAll(main, "value: exampleThingRuleToHclTerraform(", "value: (0, index_1.exampleThingRuleToHclTerraform)(")
	s, err := FromPackage(pack(t, [][2]string{
		{"example-thing/index.js", main},
		{"provider/index.js", providerJS},
		{"example-thing/index-structs/structs0.js", structs},
	}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func attrJSON(t *testing.T, a *Attribute) string {
	t.Helper()
	if a == nil {
		return "<missing>"
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFromPackage(t *testing.T) {
	s := example(t)
	if s.Version != "6.66.0" {
		t.Errorf("version %q, want 6.66.0", s.Version)
	}
	r := s.ResourceSchemas["example_thing"]
	if r == nil {
		t.Fatalf("no example_thing in %v", s.Names())
	}
	for name, want := range map[string]string{
		"arn":         `{"type":"string","computed":true}`,
		"name":        `{"type":"string","optional":true,"computed":true}`,
		"password_wo": `{"type":"string","optional":true,"write_only":true}`,
		"subnet_ids":  `{"type":["set","string"],"required":true}`,
		"tags":        `{"type":["map","string"],"optional":true}`,
		"secret":      `{"type":["list",["object",{"labels":["map","string"],"secret_arn":"string"}]],"computed":true}`,
	} {
		if got := attrJSON(t, r.Block.Attributes[name]); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	rule := r.Block.BlockTypes["rule"]
	if rule == nil || rule.NestingMode != NestingList || rule.MinItems != 1 || rule.MaxItems != 1 {
		t.Fatalf("rule: %+v, want a required list block of at most one", rule)
	}
	if got := attrJSON(t, rule.Block.Attributes["id"]); got != `{"type":"string","required":true}` {
		t.Errorf("rule.id: %s", got)
	}
	if got := attrJSON(t, rule.Block.Attributes["statement"]); got != `{"type":"dynamic","optional":true}` {
		t.Errorf("rule.statement: %s", got)
	}
	tr := rule.Block.BlockTypes["transition"]
	if tr == nil || tr.NestingMode != NestingSet || tr.MaxItems != 0 {
		t.Fatalf("rule.transition: %+v, want a set block", tr)
	}
	if got := attrJSON(t, tr.Block.Attributes["storage_class"]); got != `{"type":"string","required":true}` {
		t.Errorf("rule.transition.storage_class: %s", got)
	}
	if to := r.Block.BlockTypes["timeouts"]; to == nil || to.NestingMode != NestingSingle {
		t.Errorf("timeouts: %+v, want a single block", to)
	}

	p := s.Provider.Block
	if _, ok := p.Attributes["alias"]; ok {
		t.Errorf("provider: alias is a meta-argument, not configuration")
	}
	if got := attrJSON(t, p.Attributes["region"]); got != `{"type":"string","optional":true}` {
		t.Errorf("provider region: %s", got)
	}
	if dt := p.BlockTypes["default_tags"]; dt == nil || attrJSON(t, dt.Block.Attributes["tags"]) != `{"type":["map","string"],"optional":true}` {
		t.Errorf("provider default_tags: %+v", dt)
	}
}

func TestDynamicLeftOutOfSets(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "example-thing.js"))
	if err != nil {
		t.Fatal(err)
	}
	// Make rule a set: Terraform refuses dynamic attributes inside sets.
	js := strings.Replace(string(src), "isBlock: true,\n                type: \"list\",\n                storageClassType: \"ExampleThingRuleList\"", "isBlock: true,\n                type: \"set\",\n                storageClassType: \"ExampleThingRuleList\"", 1)
	s, err := FromPackage(pack(t, [][2]string{{"example-thing/index.js", js}, {"provider/index.js", providerJS}}))
	if err != nil {
		t.Fatal(err)
	}
	rule := s.ResourceSchemas["example_thing"].Block.BlockTypes["rule"]
	if rule.NestingMode != NestingSet {
		t.Fatalf("rule nests as %s, want set", rule.NestingMode)
	}
	if _, ok := rule.Block.Attributes["statement"]; ok {
		t.Errorf("a dynamic attribute was kept inside a set block")
	}
	if _, ok := rule.Block.Attributes["id"]; !ok {
		t.Errorf("rule.id was lost")
	}
}

func TestRoundTripAndOnly(t *testing.T) {
	s := example(t)
	path := filepath.Join(t.TempDir(), "schema.json")
	if err := s.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(back)
	if !bytes.Equal(a, b) {
		t.Errorf("schema changed through a file")
	}
	if got := s.Only([]string{"data.example_thing", "nope"}).Names(); len(got) != 0 {
		t.Errorf("Only kept %q", got)
	}
	if got := s.Only([]string{"example_thing"}).Names(); len(got) != 1 || got[0] != "example_thing" {
		t.Errorf("Only kept %q, want example_thing", got)
	}
}

func TestStorageType(t *testing.T) {
	for _, c := range []struct {
		storage, outer, want string
	}{
		{"string", "simple", `"string"`},
		{"boolean", "simple", `"bool"`},
		{"stringList", "set", `["set","string"]`},
		{"numberList", "list", `["list","number"]`},
		{"stringMap", "map", `["map","string"]`},
		{"stringListList", "set", `["set",["list","string"]]`},
		{"stringMapList", "list", `["list",["map","string"]]`},
		{"any", "simple", `"dynamic"`},
	} {
		got, ok := storageType(c.storage, c.outer)
		b, _ := json.Marshal(got)
		if !ok || string(b) != c.want {
			t.Errorf("storageType(%q, %q) = %s, %v; want %s", c.storage, c.outer, b, ok, c.want)
		}
	}
	if _, ok := storageType("ExampleThingRuleList", "list"); ok {
		t.Errorf("a struct list read as a primitive type")
	}
}
