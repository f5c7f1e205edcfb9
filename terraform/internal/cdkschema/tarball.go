package cdkschema

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"
)

var (
	versionRe   = regexp.MustCompile(`providerVersion: '([^']+)'`)
	qualifierRe = regexp.MustCompile(`\b(?:index|structs\d+)_\d+\.`)
)

// FromPackage reads the npm package of a cdktn provider binding (the .tgz
// that `npm pack` downloads) and returns the provider's schema. It reads
// every lib/<name>/index.js in the package, without unpacking it to disk.
func FromPackage(r io.Reader) (*ProviderSchema, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("read package: %w", err)
	}
	s := &ProviderSchema{ResourceSchemas: map[string]*Schema{}, DataSourceSchemas: map[string]*Schema{}}
	// Big modules spread their structs over more files in the same folder
	// (lib/<name>/index-structs/*.js), which npm does not pack next to each
	// other: those folders are kept until the end and parsed as one source.
	tr := tar.NewReader(zr)
	split := map[string]*strings.Builder{}
	var buf strings.Builder
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read package: %w", err)
		}
		rest, ok := strings.CutPrefix(h.Name, "package/lib/")
		dir, file, nested := strings.Cut(rest, "/")
		if !ok || !nested || path.Ext(file) != ".js" {
			continue
		}
		buf.Reset()
		if _, err := io.Copy(&buf, tr); err != nil {
			return nil, fmt.Errorf("read package %s: %w", h.Name, err)
		}
		src := buf.String()
		if strings.HasPrefix(file, "index-structs/") || strings.Contains(src, `require("./index-structs/`) {
			if split[dir] == nil {
				split[dir] = &strings.Builder{}
			}
			split[dir].WriteString(src)
			split[dir].WriteString("\n")
			continue
		}
		if err := s.add(src); err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	for dir, src := range split {
		if err := s.add(src.String()); err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
	}
	if s.Provider == nil {
		return nil, fmt.Errorf("read package: no provider declared")
	}
	return s, nil
}

// add adds what one generated module declares to s.
func (s *ProviderSchema) add(src string) error {
	if strings.Contains(src, `require("./`) {
		// Names imported from the folder's other files are qualified
		// (index_1.XList); they are declared in the same source here.
		src = qualifierRe.ReplaceAllString(src, "")
	}
	m, err := parseModule(src)
	if err != nil {
		return err
	}
	for _, r := range m.roots {
		b, err := m.block(r.def, nil, false)
		if err != nil {
			return fmt.Errorf("%s: %w", r.tfName, err)
		}
		switch r.kind {
		case kindResource:
			s.ResourceSchemas[r.tfName] = &Schema{Block: b}
		case kindDataSource:
			s.DataSourceSchemas[r.tfName] = &Schema{Block: b}
		case kindProvider:
			// alias is a meta-argument that cdktn models as configuration.
			delete(b.Attributes, "alias")
			s.Provider = &Schema{Block: b}
			if v := versionRe.FindStringSubmatch(src); v != nil {
				s.Version = v[1]
			}
		}
	}
	return nil
}

// Names lists the schema's resource types and data sources, sorted, data
// sources prefixed with "data.".
func (s *ProviderSchema) Names() []string {
	var names []string
	for n := range s.ResourceSchemas {
		names = append(names, n)
	}
	for n := range s.DataSourceSchemas {
		names = append(names, "data."+n)
	}
	sort.Strings(names)
	return names
}

// Only returns a copy of s that holds just the named resource types and data
// sources (named as Names names them); names s does not hold are ignored.
// Terraform reads a provider's whole schema every time it starts it, so a
// schema cut to what a configuration uses makes every run faster, and
// changes nothing for that configuration: a type it names but s lacks stays
// unknown.
func (s *ProviderSchema) Only(names []string) *ProviderSchema {
	out := &ProviderSchema{Version: s.Version, Provider: s.Provider, ResourceSchemas: map[string]*Schema{}, DataSourceSchemas: map[string]*Schema{}}
	for _, n := range names {
		if ds, ok := strings.CutPrefix(n, "data."); ok {
			if sc, ok := s.DataSourceSchemas[ds]; ok {
				out.DataSourceSchemas[ds] = sc
			}
		} else if sc, ok := s.ResourceSchemas[n]; ok {
			out.ResourceSchemas[n] = sc
		}
	}
	return out
}
