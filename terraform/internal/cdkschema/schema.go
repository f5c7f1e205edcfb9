// Package cdkschema recovers a Terraform provider's schema from the
// JavaScript that cdktn generates for it, and writes it in the shape of
// `terraform providers schema -json`.
//
// The AWS provider cannot be downloaded on the machines that check pickup's
// deployment, but the npm package @cdktn/provider-aws carries, in its
// generated code, every resource's and data source's attributes: their
// Terraform names, types, nesting, and whether they are required, optional or
// computed. A schema-only provider (see package stubprovider) serves what this
// package extracts, so that `terraform validate` and `terraform test` can run
// offline.
//
// What the generated code does not say, the schema cannot hold: attributes
// are never marked sensitive, every schema version is 0, and a computed list
// of strings that the provider declares as a set reads here as a list.
// Attributes whose names end in "_wo" follow the AWS provider's convention for
// write-only arguments and are marked write-only.
package cdkschema

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ProviderSchema is a provider's schema, shaped like one entry of
// `terraform providers schema -json`.
type ProviderSchema struct {
	// Version is the provider's version the schema was generated from.
	Version           string             `json:"version"`
	Provider          *Schema            `json:"provider"`
	ResourceSchemas   map[string]*Schema `json:"resource_schemas"`
	DataSourceSchemas map[string]*Schema `json:"data_source_schemas"`
}

// Schema is the schema of the provider's own configuration, of a resource
// type or of a data source.
type Schema struct {
	Version int64  `json:"version"`
	Block   *Block `json:"block"`
}

// Block is a configuration block: its attributes and the blocks nested in it.
type Block struct {
	Attributes map[string]*Attribute `json:"attributes,omitempty"`
	BlockTypes map[string]*BlockType `json:"block_types,omitempty"`
}

// Attribute is one attribute of a block. Type is a type in Terraform's JSON
// type syntax: "string", ["list","number"], ["object",{"a":"bool"}], ...
type Attribute struct {
	Type      json.RawMessage `json:"type"`
	Required  bool            `json:"required,omitempty"`
	Optional  bool            `json:"optional,omitempty"`
	Computed  bool            `json:"computed,omitempty"`
	WriteOnly bool            `json:"write_only,omitempty"`
}

// BlockType is a nested block: how it nests ("single", "list" or "set"), its
// content and the bounds on how many times it may appear.
type BlockType struct {
	NestingMode string `json:"nesting_mode"`
	Block       *Block `json:"block"`
	MinItems    int64  `json:"min_items,omitempty"`
	MaxItems    int64  `json:"max_items,omitempty"`
}

// Nesting modes of a BlockType.
const (
	NestingSingle = "single"
	NestingList   = "list"
	NestingSet    = "set"
)

// WriteFile writes s as JSON to path, through a temporary file so that a
// reader never sees half of it.
func (s *ProviderSchema) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".schema-*.json")
	if err != nil {
		return fmt.Errorf("write schema: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := json.NewEncoder(tmp).Encode(s); err != nil {
		tmp.Close()
		return fmt.Errorf("write schema %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write schema %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write schema: %w", err)
	}
	return nil
}

// Read decodes a schema written by WriteFile.
func Read(r io.Reader) (*ProviderSchema, error) {
	var s ProviderSchema
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	if s.Provider == nil || s.Provider.Block == nil {
		return nil, fmt.Errorf("read schema: no provider block")
	}
	return &s, nil
}

// ReadFile reads a schema written by WriteFile.
func ReadFile(path string) (*ProviderSchema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	defer f.Close()
	return Read(f)
}
