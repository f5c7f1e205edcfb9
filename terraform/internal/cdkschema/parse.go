package cdkschema

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// A generated module (one lib/<name>/index.js) declares, at the top level:
//
//   - one class per resource, data source or provider, extending
//     cdktn.TerraformResource, cdktn.TerraformDataSource or
//     cdktn.TerraformProvider, with `static tfResourceType = "aws_..."`;
//   - one class XOutputReference per nested object X, and XList for lists
//     and sets of them;
//   - one function xToHclTerraform per nested object X, and in every root
//     class a method synthesizeHclAttributes, listing the configurable
//     attributes with whether each is a block and how it nests.
//
// Every member of a class is introduced by a comment that states its flags:
//
//	// bucket - computed: true, optional: true, required: false
//
// followed by its getter, which names its Terraform type
// (this.getStringAttribute('bucket')), or by the construction of the class
// that holds its nested object (new XList(this, "rule", true), where true
// means the list wraps a set).

// Kinds of root classes.
const (
	kindResource   = "cdktn.TerraformResource"
	kindDataSource = "cdktn.TerraformDataSource"
	kindProvider   = "cdktn.TerraformProvider"
)

var (
	declRe   = regexp.MustCompile(`(?m)^(?:class (\w+) extends ([\w.]+) \{|function (\w+)ToHclTerraform\(struct\) \{)$`)
	memberRe = regexp.MustCompile(`\n {4}// (\w+) - computed: (true|false), optional: (true|false), required: (true|false)\n`)
	newRe    = regexp.MustCompile(`new ([\w.]+)\(\s*this,\s*"(\w+)"(?:,\s*(true|false))?\s*\)`)
	getterRe = regexp.MustCompile(`this\.(get\w+Attribute|interpolationForAttribute)\('(\w+)'\)`)
	hclRe    = regexp.MustCompile(`(?s)\n\s+(\w+): \{\n\s+value: ([^\n]*?),\n\s+isBlock: (true|false),\n\s+type: "(\w+)",\n\s+storageClassType: "(\w+)",\n\s+\}`)
	nestedRe = regexp.MustCompile(`(?:^|[^.\w])([a-z]\w*)ToHclTerraform\b`)
	typeRe   = regexp.MustCompile(`static tfResourceType = "(\w+)";`)
)

// module is what one generated file declares.
type module struct {
	structs map[string]*structDef
	roots   []root
}

// root is a resource, a data source or the provider.
type root struct {
	kind   string
	tfName string
	def    string
}

// structDef is a class or a struct function: the fields of one object.
type structDef struct {
	fields []*field
	byName map[string]*field
}

func (s *structDef) field(name string) *field {
	f, ok := s.byName[name]
	if !ok {
		f = &field{name: name}
		s.byName[name] = f
		s.fields = append(s.fields, f)
	}
	return f
}

// field is one member of an object, as the class and the struct function
// describe it between them.
type field struct {
	name                         string
	flags                        bool // whether a member comment stated the next three
	computed, optional, required bool
	getter                       string // getStringAttribute, ...
	class                        string // class constructed for a nested member
	wrapsSet                     bool
	hcl                          *hclEntry
}

// hclEntry is one attribute of a synthesizeHclAttributes or
// xToHclTerraform listing.
type hclEntry struct {
	isBlock bool
	typ     string // simple, list, set, map, struct
	storage string // string, stringList, numberMap, XList, ...
	nested  string // struct name of a nested object, if any
	wrapper string // "list" for listMapperHcl, "hash" for hashMapperHcl
}

// parseModule reads the declarations of one generated file.
func parseModule(src string) (*module, error) {
	m := &module{structs: map[string]*structDef{}}
	def := func(name string) *structDef {
		d, ok := m.structs[name]
		if !ok {
			d = &structDef{byName: map[string]*field{}}
			m.structs[name] = d
		}
		return d
	}
	locs := declRe.FindAllStringSubmatchIndex(src, -1)
	for _, loc := range locs {
		end := strings.Index(src[loc[1]:], "\n}\n")
		if end < 0 {
			return nil, fmt.Errorf("unterminated declaration at offset %d", loc[0])
		}
		body := src[loc[1] : loc[1]+end+1]
		if loc[6] >= 0 { // function xToHclTerraform
			parseHCL(def(upperFirst(src[loc[6]:loc[7]])), body)
			continue
		}
		name, base := src[loc[2]:loc[3]], src[loc[4]:loc[5]]
		switch {
		case base == kindResource || base == kindDataSource || base == kindProvider:
			t := typeRe.FindStringSubmatch(body)
			if t == nil {
				return nil, fmt.Errorf("class %s: no tfResourceType", name)
			}
			d := def(name)
			parseMembers(d, body)
			if i := strings.Index(body, "synthesizeHclAttributes()"); i >= 0 {
				parseHCL(d, body[i:])
			}
			m.roots = append(m.roots, root{kind: base, tfName: t[1], def: name})
		case strings.HasSuffix(name, "OutputReference"):
			parseMembers(def(strings.TrimSuffix(name, "OutputReference")), body)
		}
	}
	return m, nil
}

func parseMembers(d *structDef, body string) {
	locs := memberRe.FindAllStringSubmatchIndex(body, -1)
	for i, loc := range locs {
		end := len(body)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		seg := body[loc[1]:end]
		f := d.field(body[loc[2]:loc[3]])
		f.flags = true
		f.computed = body[loc[4]:loc[5]] == "true"
		f.optional = body[loc[6]:loc[7]] == "true"
		f.required = body[loc[8]:loc[9]] == "true"
		if n := newRe.FindStringSubmatch(seg); n != nil && n[2] == f.name {
			f.class = n[1]
			f.wrapsSet = n[3] == "true"
		} else if g := getterRe.FindStringSubmatch(seg); g != nil && g[2] == f.name {
			f.getter = g[1]
		}
	}
}

func parseHCL(d *structDef, body string) {
	for _, e := range hclRe.FindAllStringSubmatch(body, -1) {
		h := &hclEntry{isBlock: e[3] == "true", typ: e[4], storage: e[5]}
		value := e[2]
		if n := nestedRe.FindStringSubmatch(value); n != nil {
			h.nested = upperFirst(n[1])
			switch {
			case strings.Contains(value, "listMapperHcl("):
				h.wrapper = "list"
			case strings.Contains(value, "hashMapperHcl("):
				h.wrapper = "hash"
			}
		}
		d.field(e[1]).hcl = h
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// nestedDef returns the struct holding a field's nested object, and whether
// the field holds many of them (a list or a set) rather than one.
func (m *module) nestedDef(f *field) (name string, many bool) {
	switch {
	case strings.HasPrefix(f.class, "cdktn."):
	case strings.HasSuffix(f.class, "OutputReference"):
		return strings.TrimSuffix(f.class, "OutputReference"), false
	case strings.HasSuffix(f.class, "List"):
		return strings.TrimSuffix(f.class, "List"), true
	}
	if f.hcl != nil && f.hcl.nested != "" {
		return f.hcl.nested, f.hcl.wrapper != ""
	}
	return "", false
}

// block converts the struct name into a Terraform block. outer holds the
// structs it is nested in: cdktn gives structurally equal objects one name,
// so a few recursive-looking schemas (WAF rule statements) would never end;
// the field that closes such a loop is left out. inSet tells that the block
// is nested in a set, where Terraform allows no attribute of dynamic type:
// cdktn types a few deep structures (WAF statements) as dynamic, and those
// are left out too.
func (m *module) block(name string, outer map[string]bool, inSet bool) (*Block, error) {
	outer = enter(outer, name)
	d, ok := m.structs[name]
	if !ok {
		return nil, fmt.Errorf("no declaration of %s", name)
	}
	b := &Block{Attributes: map[string]*Attribute{}, BlockTypes: map[string]*BlockType{}}
	for _, f := range d.fields {
		if f.hcl != nil && f.hcl.isBlock {
			nested, many := m.nestedDef(f)
			if nested == "" {
				return nil, fmt.Errorf("%s.%s: block without a nested object", name, f.name)
			}
			if outer[nested] {
				continue
			}
			set := f.hcl.typ == "set" || f.wrapsSet
			inner, err := m.block(nested, outer, inSet || (set && f.hcl.typ != "struct"))
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", name, f.name, err)
			}
			bt := &BlockType{Block: inner}
			switch {
			case f.hcl.typ == "struct":
				bt.NestingMode = NestingSingle
			case f.hcl.typ == "set" || f.wrapsSet:
				bt.NestingMode = NestingSet
			default:
				bt.NestingMode = NestingList
			}
			if !many && bt.NestingMode != NestingSingle {
				bt.MaxItems = 1
			}
			if f.required && bt.NestingMode != NestingSingle {
				bt.MinItems = 1
			}
			b.BlockTypes[f.name] = bt
			continue
		}
		if nested, _ := m.nestedDef(f); outer[nested] {
			continue
		}
		t, err := m.attrType(name, f, outer)
		if err != nil {
			return nil, err
		}
		if inSet && hasDynamic(t) {
			continue
		}
		raw, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", name, f.name, err)
		}
		a := &Attribute{Type: raw, Computed: f.computed, Optional: f.optional, Required: f.required}
		if !f.flags {
			// Only the provider's own nested configuration lacks member
			// comments; all of it is optional.
			a.Optional = true
		}
		a.WriteOnly = strings.HasSuffix(f.name, "_wo")
		b.Attributes[f.name] = a
	}
	return b, nil
}

// attrType is the Terraform type of an attribute, as a value that marshals to
// Terraform's JSON type syntax.
func (m *module) attrType(owner string, f *field, outer map[string]bool) (any, error) {
	if nested, many := m.nestedDef(f); nested != "" {
		obj, err := m.objectType(nested, outer)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", owner, f.name, err)
		}
		switch {
		case many && (f.wrapsSet || (f.hcl != nil && f.hcl.typ == "set")):
			return []any{"set", obj}, nil
		case many && f.hcl != nil && f.hcl.wrapper == "hash":
			return []any{"map", obj}, nil
		case many, f.hcl != nil && f.hcl.typ == "list":
			return []any{"list", obj}, nil
		default:
			return obj, nil
		}
	}
	if f.hcl != nil {
		if t, ok := storageType(f.hcl.storage, f.hcl.typ); ok {
			return t, nil
		}
	}
	switch f.getter {
	case "getStringAttribute":
		return "string", nil
	case "getNumberAttribute":
		return "number", nil
	case "getBooleanAttribute":
		return "bool", nil
	case "getListAttribute":
		return []any{"list", "string"}, nil
	case "getNumberListAttribute":
		return []any{"list", "number"}, nil
	case "getStringMapAttribute":
		return []any{"map", "string"}, nil
	case "getNumberMapAttribute":
		return []any{"map", "number"}, nil
	case "getBooleanMapAttribute":
		return []any{"map", "bool"}, nil
	case "interpolationForAttribute":
		return "dynamic", nil
	}
	switch f.class {
	case "cdktn.StringMap":
		return []any{"map", "string"}, nil
	case "cdktn.NumberMap":
		return []any{"map", "number"}, nil
	case "cdktn.BooleanMap":
		return []any{"map", "bool"}, nil
	}
	return nil, fmt.Errorf("%s.%s: no type (getter %q, class %q)", owner, f.name, f.getter, f.class)
}

// objectType is the object type whose attributes are all the fields of the
// struct name, blocks included.
func (m *module) objectType(name string, outer map[string]bool) (any, error) {
	outer = enter(outer, name)
	d, ok := m.structs[name]
	if !ok {
		return nil, fmt.Errorf("no declaration of %s", name)
	}
	attrs := map[string]any{}
	for _, f := range d.fields {
		if nested, _ := m.nestedDef(f); outer[nested] {
			continue
		}
		t, err := m.attrType(name, f, outer)
		if err != nil {
			return nil, err
		}
		attrs[f.name] = t
	}
	return []any{"object", attrs}, nil
}

// hasDynamic tells whether the type t is or holds the dynamic type.
func hasDynamic(t any) bool {
	switch t := t.(type) {
	case string:
		return t == "dynamic"
	case []any:
		if len(t) != 2 {
			return false
		}
		if attrs, ok := t[1].(map[string]any); ok {
			for _, a := range attrs {
				if hasDynamic(a) {
					return true
				}
			}
			return false
		}
		return hasDynamic(t[1])
	}
	return false
}

// enter returns outer with name added, leaving outer as it was.
func enter(outer map[string]bool, name string) map[string]bool {
	in := make(map[string]bool, len(outer)+1)
	for k := range outer {
		in[k] = true
	}
	in[name] = true
	return in
}

// storageType reads cdktn's storage class type ("string", "numberList",
// "stringMapList", ...) as a Terraform type; outer is "list", "set", "map" or
// "simple" and decides whether the outermost list is a set.
func storageType(storage, outer string) (any, bool) {
	var t any
	rest := storage
	for _, base := range []struct{ js, tf string }{{"string", "string"}, {"number", "number"}, {"boolean", "bool"}, {"any", "dynamic"}} {
		if strings.HasPrefix(rest, base.js) {
			t, rest = base.tf, strings.TrimPrefix(rest, base.js)
			break
		}
	}
	if t == nil {
		return nil, false
	}
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "List"):
			kind := "list"
			if rest == "List" && outer == "set" {
				kind = "set"
			}
			t, rest = []any{kind, t}, rest[len("List"):]
		case strings.HasPrefix(rest, "Map"):
			t, rest = []any{"map", t}, rest[len("Map"):]
		default:
			return nil, false
		}
	}
	return t, true
}
