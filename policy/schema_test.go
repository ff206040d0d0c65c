package policy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// The CRDs' schemas, compiled once: "apiVersion kind" → schema.
var crds struct {
	once    sync.Once
	schemas map[string]*jsonschema.Schema
	err     error
}

// validate decodes one YAML document against the openAPIV3Schema of the CRD version it
// names, the way the API server does with strict field validation (kubectl apply
// --validate=strict): unknown fields, wrong types, missing required fields and values
// outside an enum are errors. The CRDs are in testdata/crds (README.md there).
func validate(t *testing.T, doc []byte) error {
	t.Helper()
	crds.once.Do(func() { crds.schemas, crds.err = loadCRDs(filepath.Join("testdata", "crds")) })
	if crds.err != nil {
		t.Fatal(crds.err)
	}
	inst, err := toJSONValue(doc)
	if err != nil {
		return fmt.Errorf("decoding the document: %w", err)
	}
	obj, ok := inst.(map[string]any)
	if !ok {
		return fmt.Errorf("the document is a %T, not an object", inst)
	}
	key := fmt.Sprintf("%v %v", obj["apiVersion"], obj["kind"])
	s, ok := crds.schemas[key]
	if !ok {
		return fmt.Errorf("no CRD serves %s", key)
	}
	return s.Validate(inst)
}

// toJSONValue turns YAML into the JSON value jsonschema validates (json.Number numbers).
func toJSONValue(doc []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(j))
}

func loadCRDs(dir string) (map[string]*jsonschema.Schema, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no CRDs in %s: %v", dir, err)
	}
	c := jsonschema.NewCompiler()
	// OpenAPI v3.0 schemas are JSON Schema draft 4 with extensions (boolean
	// exclusiveMinimum, no const).
	c.DefaultDraft(jsonschema.Draft4)
	out := map[string]*jsonschema.Schema{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		v, err := toJSONValue(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		crd := v.(map[string]any)
		spec := crd["spec"].(map[string]any)
		group := spec["group"].(string)
		kind := spec["names"].(map[string]any)["kind"].(string)
		for _, ver := range spec["versions"].([]any) {
			ver := ver.(map[string]any)
			if served, _ := ver["served"].(bool); !served {
				continue
			}
			apiVersion := group + "/" + ver["name"].(string)
			schema := ver["schema"].(map[string]any)["openAPIV3Schema"].(map[string]any)
			structural(schema)
			root(schema, apiVersion, kind)
			url := fmt.Sprintf("file:///%s/%s.json", filepath.Base(f), ver["name"])
			if err := c.AddResource(url, schema); err != nil {
				return nil, fmt.Errorf("%s %s: %w", f, apiVersion, err)
			}
			s, err := c.Compile(url)
			if err != nil {
				return nil, fmt.Errorf("compiling the schema of %s %s: %w", apiVersion, kind, err)
			}
			out[apiVersion+" "+kind] = s
		}
	}
	return out, nil
}

// structural gives a CRD schema the API server's meaning in JSON Schema terms: an
// object's fields are exactly its properties unless x-kubernetes-preserve-unknown-fields
// or additionalProperties says otherwise (the server prunes, or with strict field
// validation rejects, any other); x-kubernetes-int-or-string is an integer or a string;
// nullable admits null.
func structural(s map[string]any) {
	for _, k := range []string{"properties", "patternProperties", "definitions"} {
		if m, ok := s[k].(map[string]any); ok {
			for _, sub := range m {
				if sub, ok := sub.(map[string]any); ok {
					structural(sub)
				}
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties", "not"} {
		if sub, ok := s[k].(map[string]any); ok {
			structural(sub)
		}
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if l, ok := s[k].([]any); ok {
			for _, sub := range l {
				if sub, ok := sub.(map[string]any); ok {
					structural(sub)
				}
			}
		}
	}
	if s["x-kubernetes-int-or-string"] == true {
		delete(s, "type")
		s["anyOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
	}
	if s["nullable"] == true {
		if t, ok := s["type"].(string); ok {
			s["type"] = []any{t, "null"}
		}
	}
	_, hasAP := s["additionalProperties"]
	if s["type"] == "object" && s["x-kubernetes-preserve-unknown-fields"] != true && !hasAP {
		s["additionalProperties"] = false
	}
}

// root adds what the API server checks of every object itself: apiVersion, kind and
// metadata.name (a DNS subdomain for these cluster-scoped kinds).
func root(s map[string]any, apiVersion, kind string) {
	props, _ := s["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		s["properties"] = props
	}
	stringMap := map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
	props["apiVersion"] = map[string]any{"type": "string", "enum": []any{apiVersion}}
	props["kind"] = map[string]any{"type": "string", "enum": []any{kind}}
	props["metadata"] = map[string]any{
		"type":     "object",
		"required": []any{"name"},
		"properties": map[string]any{
			"name":        map[string]any{"type": "string", "maxLength": json.Number("253"), "pattern": `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`},
			"labels":      stringMap,
			"annotations": stringMap,
		},
		"additionalProperties": false,
	}
	s["required"] = []any{"apiVersion", "kind", "metadata"}
	s["additionalProperties"] = false
}

// splitDocs splits a multi-document YAML stream.
func splitDocs(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, d := range strings.Split(string(stream), "\n---\n") {
		if strings.TrimSpace(d) != "" {
			out = append(out, []byte(strings.TrimSuffix(d, "\n")+"\n"))
		}
	}
	return out
}
